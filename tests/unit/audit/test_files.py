"""The writer lock beside the audit log: claimed at startup, inherited by the writer, kept
across rotation, never needed to read."""

from __future__ import annotations

import pytest

from authsvc.audit import Rotation, verify
from authsvc.audit.files import WriterHeld, claim, log_files
from tests.unit.audit.conftest import MakeLog, decision


def test_a_claim_is_inherited_by_the_writer_and_freed_when_it_closes(make_log: MakeLog) -> None:
    log = make_log()
    release = claim(log.sink.path)
    log.append(decision(1))  # the writer takes the claimed lock over
    release()  # so this lets nothing go
    with pytest.raises(WriterHeld):
        claim(log.sink.path)
    log.close()
    claim(log.sink.path)()


def test_an_unused_claim_is_let_go(make_log: MakeLog) -> None:
    log = make_log()
    claim(log.sink.path)()
    log.append(decision(1))
    log.close()


def test_a_second_writer_is_refused(make_log: MakeLog) -> None:
    first, second = make_log(), make_log()
    first.append(decision(1))
    with pytest.raises(WriterHeld):
        second.append(decision(2))
    first.close()


def test_the_lock_stays_with_the_path_across_rotation(make_log: MakeLog) -> None:
    log = make_log(rotation=Rotation(max_bytes=1))
    for n in range(3):
        log.append(decision(n))
    assert len(log_files(log.sink.path)) > 1  # the file first written was renamed
    with pytest.raises(WriterHeld):
        claim(log.sink.path)
    assert verify(log_files(log.sink.path)).ok  # readers take no lock
    log.close()


def test_one_claim_per_path(make_log: MakeLog) -> None:
    path = make_log().sink.path
    release = claim(path)
    with pytest.raises(WriterHeld):
        claim(path)
    release()
    claim(path)()
