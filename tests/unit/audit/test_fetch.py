"""Reading the stream back: grouped by instance, ordered, exact duplicates dropped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

from authsvc.audit import ChainHead, verify
from authsvc.audit.chain import link
from authsvc.audit.fetch import collect, folder_name, write
from authsvc.audit.stream import StoredMsg


def _chain(instance: str, count: int) -> list[bytes]:
    head, lines = ChainHead(), []
    for n in range(count):
        line, head = link({"type": "decision", "instance": instance, "n": n,
                           "event_id": f"{instance}-{n}"}, head)
        lines.append(line)
    return lines


async def _stream(lines: list[bytes]) -> AsyncIterator[StoredMsg]:
    for number, line in enumerate(lines, start=1):
        yield StoredMsg(number, "authsvc.audit.x", "", line)


async def test_interleaved_reordered_and_repeated_records_come_out_as_chains(
        tmp_path: Path) -> None:
    a, b = _chain("a", 5), _chain("b", 3)
    # b interleaved; a's seq 3 replayed after 4 and 5 (landed late), then repeated
    messages = [a[0], b[0], a[1], b[1], a[3], a[4], a[2], b[2], a[2], a[4], b"not json"]
    found = await collect(_stream(messages))
    assert found.summary()["instances"] == {"a": {"records": 5, "duplicates_dropped": 2},
                                            "b": {"records": 3, "duplicates_dropped": 0}}
    assert found.unreadable == [11]
    write(found, tmp_path)
    assert verify([tmp_path / "a"]).ok and verify([tmp_path / "b"]).ok
    assert verify([tmp_path / "a"]).records == 5


async def test_two_different_records_under_one_seq_are_both_kept(tmp_path: Path) -> None:
    a = _chain("a", 3)
    forged = json.loads(a[1])
    forged["n"] = 99
    forged_line, _ = link(forged, ChainHead(1, json.loads(a[0])["record_hash"]))
    found = await collect(_stream([*a, forged_line]))
    write(found, tmp_path)
    report = verify([tmp_path / "a"])
    assert not report.ok and report.first_break is not None
    assert report.first_break.kind == "seq_order"


def test_instance_names_from_the_stream_never_become_paths() -> None:
    assert folder_name("svc-1.example") == "svc-1.example"
    for hostile in ("../etc", "a/b", ".hidden", ""):
        assert folder_name(hostile).startswith("instance-")
