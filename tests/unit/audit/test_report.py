"""audit report: the tables reconcile with the totals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from authsvc.audit import report
from authsvc.audit.report import NO_POLICY, NOT_RECORDED
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
