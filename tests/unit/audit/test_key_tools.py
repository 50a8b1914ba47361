"""verify, export --filter and the report show the key.changed records of a chain."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit import report, verify
from authsvc.audit.export import Query, export, parse_filters
from authsvc.audit.keychange import KEY_CHANGED_TYPE, Change, KeyChange
from authsvc.cli import main
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair
from tests.unit.audit.conftest import START, MakeLog
from tests.unit.audit.test_key_events import NEW, OLD, run


def _log_with_change(make_log: MakeLog) -> Path:
    run(make_log, OLD)
    run(make_log, {**NEW, "xkey": "XNEW"})
    return make_log().sink.path.parent


def test_verify_lists_the_key_changes(make_log: MakeLog, signer: KeyPair,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = _log_with_change(make_log)
    result = verify([folder], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert result.ok
    [(seq, _, changes)] = result.key_changes
    assert changes == [KeyChange("issuer", Change.REPLACED, "AOLD", "ANEW"),
                       KeyChange("xkey", Change.ADDED, None, "XNEW")]
    assert main(["audit", "verify", str(folder), "--key", signer.public_key, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    [event] = summary["key_changes"]
    assert event["seq"] == seq and [c["role"] for c in event["changes"]] == ["issuer", "xkey"]
    assert summary["types"][KEY_CHANGED_TYPE] == 1


def test_export_filters_key_changes_by_type_and_role(make_log: MakeLog, signer: KeyPair,
                                                     tmp_path: Path) -> None:
    folder = _log_with_change(make_log)
    period = {"start": START, "end": START + timedelta(days=1)}

    def exported(*filters: str) -> list[dict[str, Any]]:
        out = tmp_path / "-".join(filters).replace("=", "_")  # an export never reuses --out
        export([folder], Query(**period, filters=parse_filters(list(filters))), out,
               tool_version="test", keys=frozenset({signer.public_key}), check=nkeys.verify)
        return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]

    [changed] = exported(f"type={KEY_CHANGED_TYPE}")
    assert changed["changes"][0]["new"] == "ANEW"
    assert exported("key_role=xkey") == [changed]
    assert exported("key_role=audit") == []


def test_the_report_lists_the_key_changes_of_the_period(make_log: MakeLog,
                                                        tmp_path: Path) -> None:
    folder = _log_with_change(make_log)
    built = report.build([folder], START, START + timedelta(days=1))
    assert [(k.instance, k.change) for k in built.key_changes] == [
        ("test", KeyChange("issuer", Change.REPLACED, "AOLD", "ANEW")),
        ("test", KeyChange("xkey", Change.ADDED, None, "XNEW"))]
    later = report.build([folder], START + timedelta(days=1), START + timedelta(days=2))
    assert later.key_changes == []
