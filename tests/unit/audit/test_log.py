"""The writer resumes the chain from the last record on disk, or refuses to write after junk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsvc.audit import verify
from authsvc.audit.files import log_files
from authsvc.errors import AuditError
from tests.unit.audit.conftest import MakeLog, decision


def _written(make_log: MakeLog, count: int = 3) -> Path:
    log = make_log()
    for n in range(count):
        log.append(decision(n))
    log.close()
    return log.sink.path


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_a_torn_tail_is_moved_aside_and_the_chain_continues(make_log: MakeLog) -> None:
    path = _written(make_log)
    with path.open("ab") as handle:
        handle.write(b'{"seq":4,"type":"deci')  # a crash mid-write
    log = make_log()
    log.append(decision(9))
    log.close()
    recovered, after = _records(path)
    assert recovered["type"] == "audit.recovered" and recovered["seq"] == 4
    assert after["seq"] == 5
    report = verify(log_files(path)[:-1])  # the moved file: intact, torn at its end
    assert report.ok and report.torn_final


# A whole line ending in its newline is not what a crash leaves: damage or tampering.
NOT_CHAINED = [b"{}", b"[1]", b'"x"', b"null", b'{"seq":"4","record_hash":"ab"}',
               b'{"seq":4,"record_hash":7}', b'{"seq":true,"record_hash":"' + b"a" * 64 + b'"}',
               b'{"seq":0,"record_hash":"' + b"a" * 64 + b'"}',
               b'{"seq":4,"record_hash":"not-a-hash"}', b"not json",
               b'{"v":1,"type":"decision"}']  # a v1 record after the chain began


@pytest.mark.parametrize("last", NOT_CHAINED, ids=lambda b: b.decode())
def test_a_last_line_that_is_not_a_chained_record_is_refused(make_log: MakeLog,
                                                             last: bytes) -> None:
    path = _written(make_log)
    with path.open("ab") as handle:
        handle.write(last + b"\n")
    before = path.read_bytes()
    log = make_log()
    with pytest.raises(AuditError):
        log.append(decision(9))
    with pytest.raises(AuditError):  # every later record too, until someone has looked
        log.event("service.stop")
    log.close()
    assert path.read_bytes() == before
    assert log_files(path) == [path]  # nothing moved aside either


def test_a_v1_log_is_continued_by_a_chain_from_seq_1(make_log: MakeLog) -> None:
    path = make_log().sink.path
    path.write_bytes(b'{"v":1,"type":"decision","decision":"allow"}\n' * 2)
    log = make_log()
    log.append(decision(1))
    log.close()
    assert _records(path)[-1]["seq"] == 1
    report = verify([path])
    assert report.ok and report.legacy == 2 and report.records == 1
