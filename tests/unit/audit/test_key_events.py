"""key.changed: written at start when the keys differ from the set last recorded in the chain."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit.keychange import KEY_CHANGED_TYPE
from tests.unit.audit.conftest import MakeLog, decision

OLD = {"issuer": "AOLD", "service": "USERVICE", "xkey": None, "audit": "UAUDIT",
       "account_signing": {}}
NEW = {**OLD, "issuer": "ANEW"}


def run(make_log: MakeLog, keys: dict[str, Any] | None, *, decisions: int = 2,
        checkpoint: bool = True) -> None:
    """One service run: start, a few decisions, a checkpoint (as at shutdown), close."""
    log = make_log()
    log.start(keys=keys, version="test")
    for n in range(decisions):
        log.append(decision(n))
    if checkpoint:
        log.checkpoint()
    log.close()


def records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def types(tmp_path: Path) -> list[str]:
    return [r["type"] for r in records(tmp_path)]


def test_first_start_records_the_keys_and_claims_no_change(make_log: MakeLog,
                                                           tmp_path: Path) -> None:
    run(make_log, OLD)
    [start] = [r for r in records(tmp_path) if r["type"] == "service.start"]
    assert start["keys"] == OLD
    assert KEY_CHANGED_TYPE not in types(tmp_path)


def test_a_restart_with_the_same_keys_records_no_change(make_log: MakeLog,
                                                        tmp_path: Path) -> None:
    run(make_log, OLD)
    run(make_log, OLD)
    assert types(tmp_path).count("service.start") == 2
    assert KEY_CHANGED_TYPE not in types(tmp_path)


@pytest.mark.parametrize("checkpoint", [True, False])
def test_a_restart_with_a_new_issuer_key_records_old_and_new(make_log: MakeLog, tmp_path: Path,
                                                             checkpoint: bool) -> None:
    run(make_log, OLD, checkpoint=checkpoint)
    run(make_log, NEW)
    log = records(tmp_path)
    [changed] = [r for r in log if r["type"] == KEY_CHANGED_TYPE]
    assert changed["changes"] == [{"role": "issuer", "change": "replaced", "old": "AOLD",
                                   "new": "ANEW"}]
    assert changed["keys"] == NEW
    stated = log[changed["previous"]["seq"] - 1]  # the record that stated the old set
    assert stated["keys"] == OLD
    assert stated["type"] == ("audit.checkpoint" if checkpoint else "service.start")
    # the change comes before anything states the new set
    assert log[changed["seq"]]["type"] == "service.start" and log[changed["seq"]]["keys"] == NEW
    run(make_log, NEW)
    assert types(tmp_path).count(KEY_CHANGED_TYPE) == 1


def test_checkpoints_restate_the_key_set(make_log: MakeLog, tmp_path: Path) -> None:
    run(make_log, OLD)
    [point] = [r for r in records(tmp_path) if r["type"] == "audit.checkpoint"]
    assert point["keys"] == OLD


def test_a_log_without_a_recorded_key_set_claims_no_change(
        make_log: MakeLog, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run(make_log, None)  # a start that recorded no keys, as older versions' logs may hold
    with caplog.at_level(logging.WARNING, logger="authsvc.audit"):
        run(make_log, NEW)
    assert KEY_CHANGED_TYPE not in types(tmp_path)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
