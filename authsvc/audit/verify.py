"""Verify an audit log end to end: chain, sequence, checkpoints. Pure over bytes.

The verifier reads every line of every file in chain order and reports the first break
with its position (file, line, seq), every sequence gap, checkpoint signature results and
torn tails. A torn last line (a crash mid-write) is reported as such, not as tampering:
the chain, not the torn bytes, decides whether anything is missing.

A hash chain alone proves nothing to someone who can rewrite the files: they can re-hash
every record after an edit. Only a checkpoint signed with a key held elsewhere does. So with
trusted keys, every record must be covered by a checkpoint whose signature verified
(``Result.UNSIGNED`` otherwise), and every file but the last must end with one
(``checkpoint_missing``), as the writer guarantees at each rotation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import GENESIS, ChainHead, record_hash, stored_record
from authsvc.audit.keychange import KEY_CHANGED_TYPE, KeyChange, changes_of
from authsvc.audit.seqranges import SeqRanges

RECOVERED_TYPE = "audit.recovered"  # the writer moved a torn file aside (AuditLog._resume)


class BreakKind(StrEnum):
    """Why the chain does not hold at a position. Stable codes (docs/audit.md)."""

    MALFORMED = "malformed"              # not one strict JSON object (RFC 7493 I-JSON)
    ALTERED = "altered"                  # not the record's canonical bytes, or hash differs
    SEQ_GAP = "seq_gap"                  # records missing (deleted, truncated, a file gone)
    SEQ_ORDER = "seq_order"              # seq repeats or goes back (reordered, inserted)
    PREV_MISMATCH = "prev_mismatch"      # prev_hash is not the previous record's hash
    UNCHAINED = "unchained"              # a record without chain fields after the chain began
    CHECKPOINT_MALFORMED = "checkpoint_malformed"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"    # head/range differs from the chain
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # signature invalid
    CHECKPOINT_KEY = "checkpoint_key"              # signed by a key that is not trusted
    CHECKPOINT_MISSING = "checkpoint_missing"      # with keys: a file before the last one
    #                                                does not end with a verified checkpoint


class Result(StrEnum):
    """The verdict on a whole log; ``verify`` maps it to its exit status."""

    INTACT = "intact"
    BROKEN = "broken"      # at least one break
    UNSIGNED = "unsigned"  # with keys: records no verified checkpoint covers
    TORN = "torn"          # the last file ends in a torn record (a crash)


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
    """What ``verify`` found; ``ok`` is False on any break, ``result`` is the verdict."""

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
    last_verified: dict[str, Any] | None = None  # the last checkpoint whose signature held
    signatures_checked: bool = False
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
    def empty(self) -> bool:
        """Nothing to verify: no line at all (no file, or only empty ones)."""
        return not (self.records or self.legacy or self.breaks or self.torn)

    @property
    def unsigned_tail(self) -> int:
        """Records after the last checkpoint (with keys: the last one that verified).

        The chain links them, but no signature covers them: whoever can write the files can
        rewrite or drop them without a trace until the next checkpoint signs the head.
        """
        if not self.records:
            return 0
        point = self.last_verified if self.signatures_checked else self.last_checkpoint
        covered = point["seq_last"] + 1 if point else (self.first_seq or 1) - 1
        return max(0, self.head.seq - covered)

    @property
    def unsigned(self) -> int:
        """With keys, the records no verified checkpoint covers (tail and legacy)."""
        return self.unsigned_tail + self.legacy if self.signatures_checked else 0

    @property
    def result(self) -> Result:
        # An unsigned tail outranks a torn one: after a crash both are usual, but only the
        # signature says the records are the service's; torn bytes are easy to append.
        if self.breaks:
            return Result.BROKEN
        if self.unsigned:
            return Result.UNSIGNED
        return Result.TORN if self.torn_final else Result.INTACT


@dataclass(frozen=True, slots=True)
class _Jump:
    """A seq ahead of the next one expected: a gap, unless the skipped seqs come later."""

    index: int  # its place in ``Report.breaks``, decided at the end
    at: Position
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class _UnsignedFile:
    """A file before the last whose last line is not a verified checkpoint."""

    at: Position
    torn: bool


@dataclass
class _Walk:
    report: Report
    keys: frozenset[str] | None
    check: cp.SignatureCheck | None
    head: ChainHead | None  # None: not started yet (expect the anchor)
    anchor: ChainHead
    seen: SeqRanges = field(default_factory=SeqRanges)
    jumps: list[_Jump] = field(default_factory=list)
    unsigned_file: _UnsignedFile | None = None  # decided by the next chained record
    signed_line: bool = False  # the last line walked was a verified checkpoint


def _first_seq(path: Path) -> tuple[int, str]:
    with path.open("rb") as handle:
        for raw in handle:
            try:
                seq = orjson.loads(raw).get("seq")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(seq, int) and not isinstance(seq, bool):
                return seq, path.name
    return -1, path.name


def chain_order(paths: Iterable[Path]) -> list[Path]:
    """Files in chain order: by the seq of their first chained record (empty files first)."""
    return sorted(paths, key=_first_seq)


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
    report = Report(signatures_checked=keys is not None and check is not None)
    walk = _Walk(report, keys, check, None, anchor or ChainHead(0, GENESIS))
    files = expand(paths)
    for index, path in enumerate(files):
        _walk_file(walk, path, final=index == len(files) - 1)
    _settle_unsigned_file(walk, None)
    if walk.head is not None:
        report.head = walk.head
        report.gaps = walk.seen.missing(walk.anchor.seq + 1, walk.head.seq)
    _settle_jumps(walk)
    return report


def _walk_file(walk: _Walk, path: Path, *, final: bool) -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # after the last newline: empty unless a write was cut short
    count, last_seq, last_broke = 0, None, False
    for number, raw in enumerate(lines, start=1):
        before = len(walk.report.breaks)
        last_seq = _walk_line(walk, Position(path.name, number), raw)
        count += last_seq is not None
        last_broke = len(walk.report.breaks) > before
    if torn:
        walk.report.torn.append((path.name, len(torn)))
        walk.report.torn_final = final
    walk.report.files.append((path.name, count))
    # The writer signs the head before each rotation (AuditLog._maybe_rotate); a file it
    # moved aside torn after a crash is followed by audit.recovered instead. A last line
    # that broke already (a bad signature) needs no second break.
    if (count and not final and walk.report.signatures_checked and not walk.signed_line
            and not last_broke):
        walk.unsigned_file = _UnsignedFile(Position(path.name, len(lines), last_seq),
                                           torn=bool(torn))


def _walk_line(walk: _Walk, at: Position, raw: bytes) -> int | None:
    """Check one line; returns its seq when it is a chained record."""
    report = walk.report
    walk.signed_line = False
    record, canonical = stored_record(raw)
    if record is None:
        _break(walk, BreakKind.MALFORMED, at, "line is not one strict JSON object (not JSON, "
               "a repeated name, NaN or Infinity, a number out of range, a lone surrogate)")
        return None
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        if walk.head is None:
            report.legacy += 1
        else:
            _break(walk, BreakKind.UNCHAINED, at, "record without seq/record_hash")
        return None
    _settle_unsigned_file(walk, record)
    at = Position(at.file, at.line, seq)
    _check_link(walk, at, record, canonical=canonical)
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
    return seq


def _check_link(walk: _Walk, at: Position, record: dict[str, Any], *, canonical: bool) -> None:
    expected = walk.head or walk.anchor
    seq = int(record["seq"])
    actual = record_hash(record)
    if record.get("record_hash") != actual:
        _break(walk, BreakKind.ALTERED, at, "content does not match record_hash")
    elif not canonical:
        _break(walk, BreakKind.ALTERED, at, "the stored bytes are not the record's canonical "
               "JSON (spacing, member order, escapes or a number's form were changed)")
    walk.seen.add(seq)
    if seq <= expected.seq:
        # A repeat or a step back. The head stays: the records after it are checked
        # against the chain as it stood, so one inserted record is one break.
        _break(walk, BreakKind.SEQ_ORDER, at, f"expected seq {expected.seq + 1}, found {seq}")
        return
    if seq > expected.seq + 1:
        # Gap or reorder: only the seqs seen by the end tell (_settle_jumps).
        walk.jumps.append(_Jump(len(walk.report.breaks), at, expected.seq + 1, seq - 1))
        _break(walk, BreakKind.SEQ_GAP, at, "")
    elif record.get("prev_hash") != expected.hash:
        _break(walk, BreakKind.PREV_MISMATCH, at, "prev_hash is not the previous record's "
               "hash (a record before it was altered, removed or inserted)")
    walk.head = ChainHead(seq, actual)  # resynchronise: later breaks are reported too


def _settle_jumps(walk: _Walk) -> None:
    breaks = walk.report.breaks
    for jump in reversed(walk.jumps):  # from the end: earlier indexes stay valid
        decided = []
        if walk.seen.any_in(jump.first, jump.last):
            decided.append(Break(BreakKind.SEQ_ORDER, jump.at, f"seq {jump.at.seq} comes "
                                 f"before seq {jump.first}..{jump.last}, which follow later "
                                 "(reordered)"))
        missing = walk.seen.missing(jump.first, jump.last)
        if missing:
            count = sum(last - first + 1 for first, last in missing)
            decided.append(Break(BreakKind.SEQ_GAP, jump.at, f"expected seq {jump.first}, "
                                 f"found {jump.at.seq} ({count} missing)"))
        breaks[jump.index:jump.index + 1] = decided


def _settle_unsigned_file(walk: _Walk, following: dict[str, Any] | None) -> None:
    """Decide on a file that did not end signed, given the chained record after it."""
    pending, walk.unsigned_file = walk.unsigned_file, None
    if pending is None:
        return
    if pending.torn and following is not None and following.get("type") == RECOVERED_TYPE:
        return  # a crash tore its last write; the next start moved it aside and said so
    _break(walk, BreakKind.CHECKPOINT_MISSING, pending.at, "this file is followed by another "
           "but does not end with a verified checkpoint, as every rotated file does")


def _check_checkpoint(walk: _Walk, at: Position, record: dict[str, Any]) -> None:
    report = walk.report
    report.checkpoints += 1
    parsed = cp.parse(record.get("checkpoint"))
    if parsed is None:
        _break(walk, BreakKind.CHECKPOINT_MALFORMED, at, "checkpoint member unreadable")
        return
    point, key, sig = parsed
    consistent = (at.seq is not None and point.seq_last == at.seq - 1
                  and point.head == record.get("prev_hash"))
    if not consistent:
        _break(walk, BreakKind.CHECKPOINT_MISMATCH, at,
               f"checkpoint vouches for seq {point.seq_last}, head {point.head[:12]}..., "
               "which is not the record before it")
    elif point.keys_sha256 is not None and point.keys_sha256 != cp.keys_digest(
            record.get("keys")):
        consistent = False
        _break(walk, BreakKind.CHECKPOINT_MISMATCH, at,
               "the record's keys are not the ones its checkpoint signed")
    summary = {"seq_first": point.seq_first, "seq_last": point.seq_last,
               "head": point.head, "time": point.time, "key": key}
    if walk.keys is not None and key not in walk.keys:
        _break(walk, BreakKind.CHECKPOINT_KEY, at, f"signed by untrusted key {key}")
    elif walk.keys is not None and walk.check is not None:
        if not walk.check(key, point.statement(), sig):
            _break(walk, BreakKind.CHECKPOINT_SIGNATURE, at, "signature does not verify")
        elif consistent:
            report.checkpoints_verified += 1
            report.last_verified = summary
            walk.signed_line = True
    report.last_checkpoint = summary


def _break(walk: _Walk, kind: BreakKind, at: Position, detail: str) -> None:
    walk.report.breaks.append(Break(kind, at, detail))
