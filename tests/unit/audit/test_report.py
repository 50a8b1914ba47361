"""audit report: the tables reconcile with the totals; an unkeyed report says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from authsvc.audit import report
from authsvc.audit.report import NO_POLICY, NOT_RECORDED
from authsvc.cli import main
from authsvc.commands.audit_keys import NOT_CHECKED, unsigned_note
from authsvc.protocol.nkeys import KeyPair
from tests.unit.audit.conftest import START, MakeLog


def _log(make_log: MakeLog) -> Path:
    log = make_log()
    log.event("policy.activated", revision="rev-1")
    for n in range(4):
        log.append({"type": "decision", "decision": "allow", "reason": "allowed",
                    "policy_revision": "rev-1", "rule_ids": ["r"], "n": n})
    log.append({"type": "decision", "decision": "deny", "reason": "no_matching_rule",
                "policy_revision": "rev-1"})
    # refused before any policy was evaluated: no revision
    log.append({"type": "decision", "decision": "deny", "reason": "token_expired"})
    log.append({"type": "decision", "decision": "error", "reason": "audit_unavailable"})
    log.append({"type": "decision", "decision": "allow", "reason": "allowed"})  # legacy
    log.checkpoint()
    log.close()
    return log.sink.path.parent


def test_the_revisions_table_accounts_for_every_decision(make_log: MakeLog) -> None:
    built = report.build([_log(make_log)], START, START + timedelta(days=1))
    assert sum(built.totals.values()) == 8
    assert sum(r.decisions for r in built.revisions.values()) == 8
    assert {name: r.decisions for name, r in built.revisions.items()} == {
        "rev-1": 5, NO_POLICY: 2, NOT_RECORDED: 1}
    assert built.revisions["rev-1"].activated == 1


@pytest.mark.parametrize("keyed", [False, True])
def test_an_unkeyed_report_says_signatures_were_not_checked(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path, keyed: bool,
        capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "report.html"
    key = ["--key", signer.public_key] if keyed else []
    assert main(["audit", "report", str(_log(make_log)), "--from", "2026-03-01", "--to",
                 "2026-03-02", "--out", str(page), *key]) == 0  # exit status either way
    out = capsys.readouterr().out
    assert (NOT_CHECKED in out.splitlines()[0]) is not keyed
    assert (unsigned_note() in out) is not keyed
    assert ('id="signatures-note"' in page.read_text()) is not keyed


def test_an_allow_superseded_by_its_error_record_counts_as_the_error(make_log: MakeLog) -> None:
    log = make_log()
    kept = {"type": "decision", "decision": "allow", "reason": "allowed",
            "policy_revision": "rev-1", "account": "APP",
            "identity": {"principal": "nkey:UA"}}
    lost = dict(kept, identity={"principal": "nkey:UB"})
    log.append(dict(kept))
    log.append(lost)  # the fsync after this one failed
    log.append({"type": "decision", "decision": "error", "reason": "audit_unavailable",
                "policy_revision": "rev-1", "identity": {"principal": "nkey:UB"},
                "supersedes": lost["event_id"]})
    log.append({"type": "decision", "decision": "error", "reason": "audit_unavailable",
                "supersedes": "not-in-these-files"})
    log.close()
    built = report.build([log.sink.path.parent], START, START + timedelta(days=1))
    assert built.totals == {"allow": 1, "error": 2}
    assert built.superseded == 1
    assert sum(sum(bucket.values()) for bucket in built.series.values()) == 3
    assert set(built.grants) == {("nkey:UA", "APP")}
    assert sum(r.decisions for r in built.revisions.values()) == sum(built.totals.values())
