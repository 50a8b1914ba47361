"""Reading the stream back: grouped by instance, ordered, exact duplicates dropped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from authsvc.audit import ChainHead, verify
from authsvc.audit.chain import canonical, link
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


def _forged_keeping_the_hash(line: bytes) -> bytes:
    """The record with one field changed and its claimed record_hash left as it was."""
    record = json.loads(line)
    record["decision"] = "deny"
    return canonical(record)


@pytest.mark.parametrize("forgery_first", [False, True])
async def test_a_forged_copy_that_keeps_the_hash_is_not_a_duplicate(
        tmp_path: Path, forgery_first: bool) -> None:
    a = _chain("a", 3)
    forged = _forged_keeping_the_hash(a[1])
    messages = [forged, *a] if forgery_first else [*a, forged]
    found = await collect(_stream(messages))
    assert found.chains["a"].duplicates == 0
    write(found, tmp_path)
    stored = (tmp_path / "a" / "audit.jsonl").read_bytes().splitlines()
    assert a[1] in stored and forged in stored  # the genuine record is never the one dropped
    report = verify([tmp_path / "a"])
    assert {"altered", "seq_order"} <= {b.kind for b in report.breaks}


async def test_a_message_holding_a_newline_is_not_written_as_lines(tmp_path: Path) -> None:
    a = _chain("a", 2)
    found = await collect(_stream([a[0], a[1] + b"\n", a[1]]))
    assert found.unreadable == [2]
    write(found, tmp_path)
    assert (tmp_path / "a" / "audit.jsonl").read_bytes() == a[0] + b"\n" + a[1] + b"\n"
