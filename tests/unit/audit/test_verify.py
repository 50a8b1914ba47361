"""verify: an intact log passes; every kind of tampering fails at the right place."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit import BreakKind, ChainHead, Report, Rotation, verify
from authsvc.audit.chain import link
from authsvc.audit.files import log_files
from authsvc.audit.verify import Result
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.unit.audit.conftest import MakeLog, decision


def _write(make_log: MakeLog, count: int, *, rotate_bytes: int = 0,
           every: int = 0) -> list[Path]:
    audit = make_log(rotation=Rotation(max_bytes=rotate_bytes))
    for n in range(count):
        audit.append(decision(n))
        if every and n % every == every - 1:
            audit.checkpoint()
    audit.checkpoint()
    path = audit.sink.path
    audit.close()
    return log_files(path)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rehashed(path: Path, index: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit line ``index`` of ``path`` and give it a matching ``record_hash``, as someone
    who can write the file but not sign would."""
    from authsvc.audit import canonical, record_hash
    lines = _lines(path)
    record = json.loads(lines[index])
    edit(record)
    record["record_hash"] = record_hash(record)
    lines[index] = canonical(record) + b"\n"
    path.write_bytes(b"".join(lines))


def test_intact_log_verifies_with_signed_checkpoints(make_log: MakeLog, signer: KeyPair) -> None:
    files = _write(make_log, 25, every=10)
    report = verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok, report.breaks
    assert report.records == 25 + 3 and report.decisions["allow"] == 25
    assert report.checkpoints == report.checkpoints_verified == 3
    assert report.unsigned_tail == 0 and not report.gaps


def test_rotation_continues_the_chain_across_files(make_log: MakeLog, signer: KeyPair) -> None:
    files = _write(make_log, 40, rotate_bytes=2000)
    assert len(files) >= 3
    report = verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok, report.breaks
    assert report.decisions["allow"] == 40
    # every rotated file ends with a signed checkpoint
    for path in files[:-1]:
        assert json.loads(_lines(path)[-1])["type"] == "audit.checkpoint"


def test_restart_resumes_the_chain(make_log: MakeLog, signer: KeyPair) -> None:
    for _ in range(3):
        audit = make_log()
        audit.event("service.start")
        audit.append(decision(1))
        audit.checkpoint()
        audit.close()
    files = log_files(audit.sink.path)
    report = verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok, report.breaks
    assert report.head.seq == 9


def _break_at(files: list[Path], signer: KeyPair) -> tuple[BreakKind, str, int]:
    report = verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert not report.ok
    first = report.first_break
    assert first is not None
    return first.kind, first.at.file, first.at.line


def test_edited_record_is_altered(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    lines[4] = lines[4].replace(b'"decision":"allow"', b'"decision":"deny"')
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (BreakKind.ALTERED, path.name, 5)


def test_edited_and_rehashed_record_breaks_the_next_link(make_log: MakeLog,
                                                         signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    _rehashed(path, 4, lambda record: record.update(decision="deny"))
    assert _break_at([path], signer) == (BreakKind.PREV_MISMATCH, path.name, 6)


def test_deleted_record_is_a_gap(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    del lines[3]
    path.write_bytes(b"".join(lines))
    report = verify([path])
    assert report.gaps == [(4, 4)]
    assert _break_at([path], signer) == (BreakKind.SEQ_GAP, path.name, 4)


def test_inserted_record_is_out_of_order(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    lines.insert(6, lines[2])  # a replayed copy of seq 3
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (BreakKind.SEQ_ORDER, path.name, 7)


def test_reordered_records_break_where_the_order_changes(make_log: MakeLog,
                                                         signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    lines[4], lines[5] = lines[5], lines[4]  # seq 5 and 6 swapped: nothing is missing
    path.write_bytes(b"".join(lines))
    report = verify([path], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert [(b.kind, b.at.line, b.at.seq) for b in report.breaks] == [
        (BreakKind.SEQ_ORDER, 5, 6), (BreakKind.SEQ_ORDER, 6, 5)]
    assert report.gaps == []


def test_record_cut_short_inside_a_file_is_malformed(make_log: MakeLog,
                                                     signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    lines[2] = lines[2][:40] + b"\n"
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (BreakKind.MALFORMED, path.name, 3)


def test_torn_final_record_is_reported_as_torn_not_tampering(make_log: MakeLog,
                                                             signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the last line, cut mid-write
    report = verify([path], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok and report.torn_final
    assert report.torn == [(path.name, len(_lines(path)[-1]))]


@pytest.mark.parametrize("damage", ["delete", "truncate", "empty"])
def test_rotated_file_deleted_or_truncated_is_a_gap_at_the_next_file(
        make_log: MakeLog, signer: KeyPair, damage: str) -> None:
    files = _write(make_log, 40, rotate_bytes=2000)
    victim, after = files[1], files[2]
    if damage == "delete":
        victim.unlink()
        files.remove(victim)
    elif damage == "truncate":
        victim.write_bytes(b"".join(_lines(victim)[:-3]))
    else:
        victim.write_bytes(b"")
    report = verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)
    breaks = [(b.kind, b.at.file, b.at.line) for b in report.breaks]
    if damage == "truncate":  # the cut took the checkpoint every rotated file ends with
        assert breaks[0] == (BreakKind.CHECKPOINT_MISSING, victim.name,
                             len(_lines(victim)))
        breaks = breaks[1:]
    assert breaks == [(BreakKind.SEQ_GAP, after.name, 1)]


def test_checkpoint_signed_by_another_key_is_refused(make_log: MakeLog,
                                                     signer: KeyPair) -> None:
    files = _write(make_log, 5)
    other = KeyPair.create(Prefix.USER)
    report = verify(files, keys=frozenset({other.public_key}), check=nkeys.verify)
    assert report.first_break is not None
    assert report.first_break.kind is BreakKind.CHECKPOINT_KEY


def test_forged_checkpoint_signature_is_refused(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 5)
    _rehashed(path, -1, lambda record: record["checkpoint"].update(
        time="2030-01-01T00:00:00.000Z"))
    assert _break_at([path], signer) == (BreakKind.CHECKPOINT_SIGNATURE, path.name, 6)


# -- with a key, only signatures make a log INTACT --------------------------------------


def _keyed(files: list[Path], signer: KeyPair) -> Report:
    return verify(files, keys=frozenset({signer.public_key}), check=nkeys.verify)


def _rebuild_without_checkpoints(files: list[Path]) -> None:
    """What write access without the key allows: drop every checkpoint, re-link the rest
    (seq, prev_hash, record_hash recomputed), keep the files and their boundaries."""
    head = ChainHead()
    for path in files:
        kept = []
        for raw in _lines(path):
            record = json.loads(raw)
            if record["type"] != "audit.checkpoint":
                line, head = link(record, head)
                kept.append(line + b"\n")
        path.write_bytes(b"".join(kept))


def test_rebuilt_rotated_files_without_checkpoints_are_broken_with_a_key(
        make_log: MakeLog, signer: KeyPair) -> None:
    files = _write(make_log, 40, rotate_bytes=2000)
    assert len(files) >= 3
    _rebuild_without_checkpoints(files)
    report = _keyed(files, signer)
    missing = [(b.at.file, b.at.line) for b in report.breaks
               if b.kind is BreakKind.CHECKPOINT_MISSING]
    assert missing == [(path.name, len(_lines(path))) for path in files[:-1]]
    assert report.breaks == [b for b in report.breaks if b.kind is BreakKind.CHECKPOINT_MISSING]
    assert report.result is Result.BROKEN
    assert verify(files).result is Result.INTACT  # without a key: the chain alone holds


def test_a_rebuilt_single_file_is_unsigned_with_a_key(make_log: MakeLog,
                                                      signer: KeyPair) -> None:
    files = _write(make_log, 12, every=5)
    _rebuild_without_checkpoints(files)
    report = _keyed(files, signer)
    assert report.ok and report.checkpoints_verified == 0
    assert (report.result, report.unsigned_tail) == (Result.UNSIGNED, 12)
    assert verify(files).result is Result.INTACT


def test_records_after_the_last_verified_checkpoint_are_an_unsigned_tail(
        make_log: MakeLog, signer: KeyPair) -> None:
    audit = make_log()
    for n in range(5):
        audit.append(decision(n))
    audit.checkpoint()  # seq 6 signs 1..5
    for n in range(3):
        audit.append(decision(n))  # seq 7..9: a live log between two checkpoints
    audit.close()
    files = log_files(audit.sink.path)
    report = _keyed(files, signer)
    assert report.ok and report.result is Result.UNSIGNED
    assert report.unsigned_tail == 3 and report.last_verified is not None
    assert report.last_verified["seq_last"] == 5
    assert verify(files).result is Result.INTACT


def test_a_checkpoint_that_does_not_verify_covers_nothing(make_log: MakeLog,
                                                          signer: KeyPair) -> None:
    files = _write(make_log, 5)
    report = verify(files, keys=frozenset({signer.public_key}),
                    check=lambda key, data, sig: False)
    assert report.first_break is not None
    assert report.first_break.kind is BreakKind.CHECKPOINT_SIGNATURE
    assert report.last_verified is None and report.unsigned_tail == 6


def test_records_before_the_chain_are_unsigned_with_a_key(make_log: MakeLog,
                                                          signer: KeyPair) -> None:
    [path] = _write(make_log, 3)
    legacy = b'{"v":1,"type":"decision","decision":"allow","reason":"allowed"}\n'
    path.write_bytes(legacy + path.read_bytes())  # claims to predate the chain
    report = _keyed([path], signer)
    assert report.ok and report.legacy == 1 and report.unsigned_tail == 0
    assert report.result is Result.UNSIGNED
    only = path.with_name("audit.jsonl.20250101T000000.000000Z")
    only.write_bytes(legacy)
    assert _keyed([only], signer).result is Result.UNSIGNED  # no chain, no checkpoint


async def test_the_writer_ends_every_file_signed_after_a_crash_and_at_stop(
        make_log: MakeLog, signer: KeyPair) -> None:
    audit = make_log()
    for n in range(6):
        audit.append(decision(n))
    audit.close()  # a crash: the file is past the size below and its last records unsigned
    audit = make_log(rotation=Rotation(max_bytes=700))
    audit.start()  # service.start: the first write of a run lands before any rotation
    for n in range(12):
        audit.append(decision(n))
    await audit.aclose()  # service.stop, then the final checkpoint
    files = log_files(audit.sink.path)
    assert len(files) >= 4
    report = _keyed(files, signer)
    assert report.result is Result.INTACT, report.breaks
    assert report.types["service.stop"] == 1 and report.unsigned_tail == 0


def test_a_file_moved_aside_torn_after_a_crash_needs_no_checkpoint(
        make_log: MakeLog, signer: KeyPair) -> None:
    audit = make_log()
    for n in range(3):
        audit.append(decision(n))
    audit.close()  # a crash: no service.stop, no final checkpoint ...
    with audit.sink.path.open("ab") as handle:
        handle.write(b'{"type":"decision","dec')  # ... in the middle of a write
    audit = make_log()  # the next start moves the torn file aside, says so, goes on
    audit.event("service.start")
    audit.append(decision(3))
    audit.checkpoint()
    audit.close()
    files = log_files(audit.sink.path)
    assert len(files) == 2
    report = _keyed(files, signer)
    assert report.result is Result.INTACT, report.breaks
    assert report.torn == [(files[0].name, 23)] and not report.torn_final


def test_torn_bytes_do_not_excuse_a_missing_checkpoint(make_log: MakeLog,
                                                       signer: KeyPair) -> None:
    files = _write(make_log, 40, rotate_bytes=2000)
    _rebuild_without_checkpoints(files)
    with files[0].open("ab") as handle:
        handle.write(b'{"type":"deci')  # looks like a crash, but no audit.recovered follows
    report = _keyed(files, signer)
    assert report.first_break is not None
    assert (report.first_break.kind, report.first_break.at.file) == (
        BreakKind.CHECKPOINT_MISSING, files[0].name)


# -- the stored bytes must be exactly the canonical record ---------------------------------


def _with_null(make_log: MakeLog) -> Path:
    audit = make_log()
    audit.append(decision(0))
    audit.append({"type": "decision", "decision": "deny", "reason": "no_matching_rule",
                  "account": None})  # seq 2, line 2
    audit.append(decision(2))
    audit.checkpoint()
    audit.close()
    return audit.sink.path


@pytest.mark.parametrize(("edit", "kind"), [
    # one reader sees allow (the first value: grep), another deny (the last: json.loads)
    ((b'{"account"', b'{"decision":"allow","account"'), BreakKind.MALFORMED),
    ((b'"account":null', b'"account":NaN'), BreakKind.MALFORMED),
    ((b'"account":null', b'"account":1e400'), BreakKind.MALFORMED),
    ((b'"account":null', b'"account":\xff'), BreakKind.MALFORMED),
    ((b'"account":null', b'"account": null'), BreakKind.ALTERED),   # spacing
    ((b'"reason":"no_matching_rule"', b'"reason":"no_matching_rul\\u0065"'),
     BreakKind.ALTERED),                                              # an escape
], ids=["duplicate-name", "nan", "1e400", "not-utf8", "spacing", "escape"])
def test_a_line_that_is_not_the_canonical_record_is_a_break(
        make_log: MakeLog, signer: KeyPair, edit: tuple[bytes, bytes],
        kind: BreakKind) -> None:
    path = _with_null(make_log)
    lines = _lines(path)
    assert edit[0] in lines[1]
    lines[1] = lines[1].replace(*edit)
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (kind, path.name, 2)


def test_crafted_lines_are_breaks_not_crashes(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 3)
    lines = _lines(path)
    lines[1] = lines[1].replace(b'"reason":"allowed"', b'"reason":"\\ud800"')  # lone surrogate
    lines[3] = lines[3].replace(b'"seq_last":3', b'"seq_last":1e400')  # the checkpoint
    path.write_bytes(b"".join(lines))
    report = _keyed([path], signer)
    assert [(b.kind, b.at.line) for b in report.breaks][:1] == [(BreakKind.MALFORMED, 2)]
    assert (BreakKind.MALFORMED, 4) in [(b.kind, b.at.line) for b in report.breaks]


def test_a_checkpoint_seq_that_is_not_an_integer_is_malformed(make_log: MakeLog,
                                                              signer: KeyPair) -> None:
    [path] = _write(make_log, 3)  # re-hashed, so only the checkpoint member is wrong
    _rehashed(path, 3, lambda record: record["checkpoint"].update(seq_last=3.0))
    assert _break_at([path], signer) == (BreakKind.CHECKPOINT_MALFORMED, path.name, 4)


# -- gaps are what is missing at the end; a jump filled later is a reorder ----------------


def test_an_inserted_copy_is_one_break_and_no_gap(make_log: MakeLog, signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    lines.insert(6, lines[2])  # a replayed copy of seq 3
    path.write_bytes(b"".join(lines))
    report = _keyed([path], signer)
    assert [(b.kind, b.at.line) for b in report.breaks] == [(BreakKind.SEQ_ORDER, 7)]
    assert report.gaps == []


def test_a_jump_partly_filled_later_is_a_reorder_and_a_gap(make_log: MakeLog,
                                                           signer: KeyPair) -> None:
    [path] = _write(make_log, 10)
    lines = _lines(path)
    seq5, seq7 = lines[4], lines[6]
    lines[4:7] = [seq7, seq5]  # order 1 2 3 4 7 5 8 ...: 6 deleted, 5 moved after 7
    path.write_bytes(b"".join(lines))
    report = _keyed([path], signer)
    assert report.gaps == [(6, 6)]
    assert [(b.kind, b.at.line) for b in report.breaks][:3] == [
        (BreakKind.SEQ_ORDER, 5), (BreakKind.SEQ_GAP, 5), (BreakKind.SEQ_ORDER, 6)]


# -- the last checkpoint's own statement of the key set ----------------------------------


async def _stopped_with_keys(make_log: MakeLog) -> Path:
    audit = make_log()
    audit.start(keys={"issuer": "AISSUER", "audit": "UAUDIT"})
    audit.append(decision(1))
    await audit.aclose()  # service.stop, then the final checkpoint restating the keys
    [path] = log_files(audit.sink.path)
    assert json.loads(_lines(path)[-1])["type"] == "audit.checkpoint"
    return path


async def test_the_last_checkpoint_signs_the_keys_it_states(make_log: MakeLog,
                                                           signer: KeyPair) -> None:
    """The final checkpoint is covered by no later one: what it says of the key set must be
    under its own signature, or anyone who can write the file can restate the keys."""
    path = await _stopped_with_keys(make_log)
    assert _keyed([path], signer).result is Result.INTACT
    _rehashed(path, -1, lambda record: record["keys"].update(issuer="AFORGED"))
    assert _break_at([path], signer) == (BreakKind.CHECKPOINT_MISMATCH, path.name,
                                         len(_lines(path)))


async def test_removing_the_keys_a_checkpoint_signed_is_a_break(make_log: MakeLog,
                                                                signer: KeyPair) -> None:
    path = await _stopped_with_keys(make_log)
    _rehashed(path, -1, lambda record: record.pop("keys"))
    assert _break_at([path], signer)[0] is BreakKind.CHECKPOINT_MISMATCH


async def test_a_v1_checkpoint_still_verifies_and_cannot_be_made_from_a_v2_one(
        make_log: MakeLog, signer: KeyPair) -> None:
    """A checkpoint written before v2 signs no keys and still verifies; dropping a v2
    checkpoint's keys_sha256 to pass it off as v1 leaves a signature that does not."""
    from authsvc.audit import checkpoint as cp

    path = await _stopped_with_keys(make_log)
    last = json.loads(_lines(path)[-1])["checkpoint"]
    parsed = cp.parse(last)
    assert parsed is not None
    point = parsed[0]
    v1 = cp.sign(cp.Checkpoint(chain=point.chain, seq_first=point.seq_first,
                               seq_last=point.seq_last, head=point.head, time=point.time),
                 signer)
    _rehashed(path, -1, lambda record: record.update(checkpoint=v1))
    assert _keyed([path], signer).result is Result.INTACT
    path = await _stopped_with_keys(make_log)
    _rehashed(path, -1, lambda record: record["checkpoint"].pop("keys_sha256"))
    assert _break_at([path], signer)[0] is BreakKind.CHECKPOINT_SIGNATURE
