"""Verify an audit log end to end: chain, sequence, checkpoints. Pure over bytes.

The verifier reads every line of every file in chain order and reports the first break
with its position (file, line, seq), every sequence gap, checkpoint signature results and
torn tails. A torn last line (a crash mid-write) is reported as such, not as tampering:
the chain, not the torn bytes, decides whether anything is missing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import GENESIS, ChainHead, record_hash
from authsvc.audit.keychange import KEY_CHANGED_TYPE, KeyChange, changes_of


class BreakKind(StrEnum):
    """Why the chain does not hold at a position. Stable codes (docs/audit.md)."""

    MALFORMED = "malformed"              # not a JSON object
    ALTERED = "altered"                  # record_hash does not match the content
    SEQ_GAP = "seq_gap"                  # records missing (deleted, truncated, a file gone)
    SEQ_ORDER = "seq_order"              # seq repeats or goes back (reordered, inserted)
    PREV_MISMATCH = "prev_mismatch"      # prev_hash is not the previous record's hash
    UNCHAINED = "unchained"              # a record without chain fields after the chain began
    CHECKPOINT_MALFORMED = "checkpoint_malformed"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"    # head/range differs from the chain
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # signature invalid
    CHECKPOINT_KEY = "checkpoint_key"              # signed by a key that is not trusted


@dataclass(frozen=True, slots=True)
class Position:
    file: str
    line: int
    seq: int | None = None

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.file}:{self.line}{seq}"


@dataclass(frozen=True, slots=True)
class Break:
    kind: BreakKind
    at: Position
    detail: str


@dataclass
class Report:
    """What ``verify`` found; ``ok`` is False on any break."""

    files: list[tuple[str, int]] = field(default_factory=list)  # (name, records)
    records: int = 0
    legacy: int = 0                      # unchained (schema v1) records before the chain
    types: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    first_seq: int | None = None
    head: ChainHead = field(default_factory=ChainHead)
    breaks: list[Break] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first missing, last missing)
    checkpoints: int = 0
    checkpoints_verified: int = 0
    last_checkpoint: dict[str, Any] | None = None
    torn: list[tuple[str, int]] = field(default_factory=list)  # (file, bytes)
    torn_final: bool = False
    key_changes: list[tuple[int, str, list[KeyChange]]] = field(default_factory=list)  # seq, time

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        return self.breaks[0] if self.breaks else None

    @property
    def unsigned_tail(self) -> int:
        """Records after the last checkpoint: protected by the chain only."""
        covered = self.last_checkpoint["seq_last"] + 1 if self.last_checkpoint else 0
        return max(0, self.head.seq - covered) if self.records else 0


@dataclass
class _Walk:
    report: Report
    keys: frozenset[str] | None
    check: cp.SignatureCheck | None
    head: ChainHead | None  # None: not started yet (expect the anchor)
    anchor: ChainHead


def chain_order(paths: Iterable[Path]) -> list[Path]:
    """Files in chain order: by the seq of their first chained record (empty files first)."""
    def first_seq(path: Path) -> tuple[int, str]:
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    seq = json.loads(raw).get("seq")
                except (ValueError, AttributeError):
                    continue
                if isinstance(seq, int):
                    return seq, path.name
        return -1, path.name
    return sorted(paths, key=first_seq)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories as the audit files in them (``*.jsonl``, rotated)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.iterdir() if p.is_file() and ".jsonl" in p.name
                         and not p.name.endswith(".lock"))
        else:
            found.append(path)
    return chain_order(found)


def verify(paths: Iterable[Path], *, keys: frozenset[str] | None = None,
           check: cp.SignatureCheck | None = None,
           anchor: ChainHead | None = None) -> Report:
    """Walk ``paths`` (files or directories) in chain order and report.

    ``keys`` are the trusted checkpoint public keys and ``check`` the signature function;
    without them checkpoints are checked for consistency only. ``anchor`` is the head the
    first record must follow (default: the start of a chain; an export's manifest gives it).
    """
    walk = _Walk(Report(), keys, check, None, anchor or ChainHead(0, GENESIS))
    files = expand(paths)
    for index, path in enumerate(files):
        _walk_file(walk, path, final=index == len(files) - 1)
    if walk.head is not None:
        walk.report.head = walk.head
    return walk.report


def _walk_file(walk: _Walk, path: Path, *, final: bool) -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # after the last newline: empty unless a write was cut short
    count = 0
    for number, raw in enumerate(lines, start=1):
        count += _walk_line(walk, Position(path.name, number), raw)
    if torn:
        walk.report.torn.append((path.name, len(torn)))
        walk.report.torn_final = final
    walk.report.files.append((path.name, count))


def _walk_line(walk: _Walk, at: Position, raw: bytes) -> int:
    report = walk.report
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError:
        _break(walk, BreakKind.MALFORMED, at, "line is not a JSON object")
        return 0
    seq = record.get("seq")
    if not isinstance(seq, int):
        if walk.head is None:
            report.legacy += 1
        else:
            _break(walk, BreakKind.UNCHAINED, at, "record without seq/record_hash")
        return 0
    at = Position(at.file, at.line, seq)
    _check_link(walk, at, record)
    report.records += 1
    report.types[str(record.get("type"))] += 1
    if record.get("type") == "decision":
        report.decisions[str(record.get("decision"))] += 1
    if report.first_seq is None:
        report.first_seq = seq
    if record.get("type") == cp.CHECKPOINT_TYPE:
        _check_checkpoint(walk, at, record)
    elif record.get("type") == KEY_CHANGED_TYPE:
        report.key_changes.append((seq, str(record.get("time", "")), changes_of(record)))
    return 1


def _check_link(walk: _Walk, at: Position, record: dict[str, Any]) -> None:
    expected = walk.head or walk.anchor
    seq = int(record["seq"])
    actual = record_hash(record)
    if record.get("record_hash") != actual:
        _break(walk, BreakKind.ALTERED, at, "content does not match record_hash")
    if seq > expected.seq + 1:
        walk.report.gaps.append((expected.seq + 1, seq - 1))
        _break(walk, BreakKind.SEQ_GAP, at, f"expected seq {expected.seq + 1}, found {seq} "
               f"({seq - expected.seq - 1} missing)")
    elif seq <= expected.seq:
        _break(walk, BreakKind.SEQ_ORDER, at, f"expected seq {expected.seq + 1}, found {seq}")
    elif record.get("prev_hash") != expected.hash:
        _break(walk, BreakKind.PREV_MISMATCH, at, "prev_hash is not the previous record's "
               "hash (a record before it was altered, removed or inserted)")
    walk.head = ChainHead(seq, actual)  # resynchronise: later breaks are reported too


def _check_checkpoint(walk: _Walk, at: Position, record: dict[str, Any]) -> None:
    report = walk.report
    report.checkpoints += 1
    parsed = cp.parse(record.get("checkpoint"))
    if parsed is None:
        _break(walk, BreakKind.CHECKPOINT_MALFORMED, at, "checkpoint member unreadable")
        return
    point, key, sig = parsed
    if at.seq is None or point.seq_last != at.seq - 1 or point.head != record.get("prev_hash"):
        _break(walk, BreakKind.CHECKPOINT_MISMATCH, at,
               f"checkpoint vouches for seq {point.seq_last}, head {point.head[:12]}..., "
               "which is not the record before it")
    if walk.keys is not None and key not in walk.keys:
        _break(walk, BreakKind.CHECKPOINT_KEY, at, f"signed by untrusted key {key}")
    elif walk.keys is not None and walk.check is not None:
        if not walk.check(key, point.statement(), sig):
            _break(walk, BreakKind.CHECKPOINT_SIGNATURE, at, "signature does not verify")
        else:
            report.checkpoints_verified += 1
    report.last_checkpoint = {"seq_first": point.seq_first, "seq_last": point.seq_last,
                              "head": point.head, "time": point.time, "key": key}


def _break(walk: _Walk, kind: BreakKind, at: Position, detail: str) -> None:
    walk.report.breaks.append(Break(kind, at, detail))
