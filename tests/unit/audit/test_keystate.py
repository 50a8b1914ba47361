"""Finding the key set last recorded on disk, by reading the log backwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit import keystate
from authsvc.audit.chain import ChainHead, link
from authsvc.audit.keystate import last_recorded

KEYS_A = {"issuer": "AONE", "audit": "UAUDIT"}
KEYS_B = {"issuer": "ATWO", "audit": "UAUDIT"}


def write(path: Path, records: list[dict[str, Any]], head: ChainHead | None = None,
          *, torn: bytes = b"") -> ChainHead:
    head, lines = head or ChainHead(), []
    for record in records:
        line, head = link(record, head)
        lines.append(line + b"\n")
    path.write_bytes(b"".join(lines) + torn)
    return head


def filler(n: int) -> dict[str, Any]:
    return {"type": "decision", "decision": "allow", "detail": "x" * 300, "n": n}


def test_the_newest_key_set_wins(tmp_path: Path) -> None:
    active = tmp_path / "audit.jsonl"
    write(active, [{"type": "service.start", "keys": KEYS_A}, filler(1),
                   {"type": "audit.checkpoint", "keys": KEYS_B}, filler(2)])
    found = last_recorded(active)
    assert found is not None
    assert (found.keys, found.seq, found.type) == (KEYS_B, 3, "audit.checkpoint")


def test_other_records_holding_keys_are_not_key_sets(tmp_path: Path) -> None:
    active = tmp_path / "audit.jsonl"
    write(active, [{"type": "service.start", "keys": KEYS_A},
                   {"type": "decision", "keys": KEYS_B}, {"type": "service.stop"}])
    found = last_recorded(active)
    assert found is not None and found.keys == KEYS_A


def test_the_search_reads_back_across_chunks_and_rotated_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystate, "CHUNK", 97)  # every line crosses chunk edges
    active = tmp_path / "audit.jsonl"
    head = write(tmp_path / "audit.jsonl.20260301T000000.000000Z",
                 [filler(0), {"type": "service.start", "keys": KEYS_A}, filler(1)])
    write(active, [filler(n) for n in range(2, 30)], head)
    found = last_recorded(active)
    assert found is not None and (found.keys, found.seq) == (KEYS_A, 2)


def test_a_torn_tail_is_not_read(tmp_path: Path) -> None:
    active = tmp_path / "audit.jsonl"
    torn = json.dumps({"type": "service.start", "seq": 9, "keys": KEYS_B}).encode()[:-1]
    write(active, [{"type": "service.start", "keys": KEYS_A}], torn=torn)
    found = last_recorded(active)
    assert found is not None and found.keys == KEYS_A


def test_nothing_found_within_the_budget_is_none(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystate, "CHUNK", 4096)
    active = tmp_path / "audit.jsonl"
    write(active, [{"type": "service.start", "keys": KEYS_A},
                   *(filler(n) for n in range(2000))])
    assert last_recorded(active, budget=64 << 10) is None
    assert last_recorded(active) is not None
    assert last_recorded(tmp_path / "missing.jsonl") is None
