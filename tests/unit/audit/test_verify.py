"""verify: an intact log passes; every kind of tampering fails at the right place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsvc.audit import BreakKind, Rotation, verify
from authsvc.audit.files import log_files
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
    from authsvc.audit import canonical, record_hash
    [path] = _write(make_log, 10)
    lines = _lines(path)
    record = json.loads(lines[4])
    record["decision"] = "deny"
    record["record_hash"] = record_hash(record)
    lines[4] = canonical(record) + b"\n"
    path.write_bytes(b"".join(lines))
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
    lines[5], lines[6] = lines[6], lines[5]
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (BreakKind.SEQ_GAP, path.name, 6)


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
    kind, name, line = _break_at(files, signer)
    assert (kind, name, line) == (BreakKind.SEQ_GAP, after.name, 1)


def test_checkpoint_signed_by_another_key_is_refused(make_log: MakeLog,
                                                     signer: KeyPair) -> None:
    files = _write(make_log, 5)
    other = KeyPair.create(Prefix.USER)
    report = verify(files, keys=frozenset({other.public_key}), check=nkeys.verify)
    assert report.first_break is not None
    assert report.first_break.kind is BreakKind.CHECKPOINT_KEY


def test_forged_checkpoint_signature_is_refused(make_log: MakeLog, signer: KeyPair) -> None:
    from authsvc.audit import canonical, record_hash
    [path] = _write(make_log, 5)
    lines = _lines(path)
    record = json.loads(lines[-1])
    record["checkpoint"]["time"] = "2030-01-01T00:00:00.000Z"
    record["record_hash"] = record_hash(record)
    lines[-1] = canonical(record) + b"\n"
    path.write_bytes(b"".join(lines))
    assert _break_at([path], signer) == (BreakKind.CHECKPOINT_SIGNATURE, path.name, 6)
