"""`authsvc policy diff --audit`: identities seen in the audit log are decided under both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsvc.cli import main

OLD = """apiVersion: authsvc/v1
kind: Policy
rules:
  - id: reader
    match: {source: nkey, subject: UREADER}
    grant: {account: APP, subscribe: {allow: ["orders.>"]}}
  - id: writer
    match: {source: nkey, subject: UWRITER}
    grant: {account: APP, publish: {allow: ["orders.created"]}}
"""
NEW = OLD.split("  - id: writer")[0]  # the writer rule is removed


def _record(subject: str, host: str) -> str:
    return json.dumps({"type": "decision", "decision": "allow", "reason": "allowed",
                       "identity": {"source": "nkey", "principal": f"nkey:{subject}",
                                    "subject": subject, "issuer": ""},
                       "client": {"host": host, "type": "nats", "kind": "Client"}})


def test_identities_from_the_audit_log_show_what_they_lose(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(NEW)
    audit = tmp_path / "audit.jsonl"
    audit.write_text("\n".join([_record("UWRITER", "10.0.0.5"), _record("UREADER", "10.0.0.6"),
                                _record("UWRITER", "10.0.0.5"),
                                json.dumps({"type": "service.start"})]) + "\n")
    assert main(["policy", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
                 "--audit", str(audit), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == ["writer"]
    assert [(c["before"], c["after"]) for c in report["identities"]] == [
        ("allow APP", "deny no_matching_rule")]
    assert report["identities"][0]["case"].startswith("nkey:UWRITER")


def test_an_unreadable_audit_record_is_an_error_with_its_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              ) -> None:
    (tmp_path / "p.yaml").write_text(OLD)
    audit = tmp_path / "audit.jsonl"
    audit.write_text(_record("UREADER", "h") + "\n{not json\n")
    assert main(["policy", "diff", str(tmp_path / "p.yaml"), str(tmp_path / "p.yaml"),
                 "--audit", str(audit)]) == 2
    assert f"{audit}:2" in capsys.readouterr().err
