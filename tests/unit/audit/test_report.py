"""audit report: the tables reconcile with the totals; an unkeyed report says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from authsvc.audit import report
from authsvc.audit.report import NO_POLICY, NOT_RECORDED
from authsvc.cli import main
from authsvc.commands.audit_keys import NOT_CHECKED, unsigned_note
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair
from tests.unit.audit.conftest import START, MakeLog


def _log(make_log: MakeLog, path: Path | None = None) -> Path:
    log = make_log(path=path)
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


def _torn(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # the last record cut mid-write, as a crash leaves it


def _report(source: Path, page: Path, *extra: str) -> int:
    return main(["audit", "report", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
                 "--out", str(page), *extra])


def test_a_torn_end_is_torn_as_verify_says_not_broken(make_log: MakeLog,
                                                       tmp_path: Path) -> None:
    source = _log(make_log)
    _torn(source / "audit.jsonl")
    assert main(["audit", "verify", str(source)]) == 3
    page = tmp_path / "report.html"
    assert _report(source, page) == 3
    built = report.build([source], START, START + timedelta(days=1))
    assert built.verdict == "torn" and [c.result for c in built.integrity] == ["torn"]
    assert 'id="torn-note"' in page.read_text()


def test_a_broken_chain_outweighs_a_torn_one(make_log: MakeLog, tmp_path: Path) -> None:
    torn, broken = (_log(make_log, tmp_path / name / "audit.jsonl") for name in ("a", "b"))
    _torn(torn / "audit.jsonl")
    lines = (broken / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (broken / "audit.jsonl").write_bytes(b"".join(lines[:2] + lines[3:]))  # one deleted
    assert _report(tmp_path, tmp_path / "report.html") == 1
    built = report.build([tmp_path], START, START + timedelta(days=1))
    assert built.verdict == "broken"
    assert sorted(c.result for c in built.integrity) == ["broken", "torn"]


# Crafted records, each with one member of the wrong type (they chain correctly).
CRAFTED = {
    "time": {"type": "decision", "decision": "allow", "time": "2026-03-01T00:00:05"},
    "identity": {"type": "decision", "decision": "deny", "reason": "x", "identity": "nkey:UA"},
    "rule_ids": {"type": "decision", "decision": "allow", "rule_ids": 5},
    "supersedes": {"type": "decision", "decision": "error", "supersedes": ["x"]},
    "decision": {"type": "decision", "decision": {"allow": True}},
}


@pytest.mark.parametrize("member", sorted(CRAFTED))
def test_a_member_of_the_wrong_type_is_counted_not_a_crash(make_log: MakeLog, tmp_path: Path,
                                                           member: str) -> None:
    log = make_log()
    log.append({"type": "decision", "decision": "allow", "account": "APP",
                "identity": {"principal": "nkey:UA"}})
    log.append(dict(CRAFTED[member]))
    log.close()
    source = log.sink.path.parent
    assert _report(source, tmp_path / "report.html") == 0
    built = report.build([source], START, START + timedelta(days=1))
    assert built.malformed == {member: 1}
    assert sum(r.decisions for r in built.revisions.values()) == sum(built.totals.values())


def test_an_allow_superseded_just_after_the_period_is_not_counted(make_log: MakeLog) -> None:
    end = START + timedelta(days=1)
    log = make_log()
    lost = {"type": "decision", "decision": "allow", "reason": "allowed", "account": "APP",
            "identity": {"principal": "nkey:UB"}, "policy_revision": "rev-1",
            "time": "2026-03-01T23:59:59.999Z"}
    log.append(lost)
    # another request's record lands first: the period's cut is before the error record
    log.append({"type": "decision", "decision": "deny", "reason": "no_matching_rule",
                "time": "2026-03-02T00:00:00.002Z"})
    log.append({"type": "decision", "decision": "error", "reason": "audit_unavailable",
                "identity": {"principal": "nkey:UB"}, "supersedes": lost["event_id"],
                "time": "2026-03-01T23:59:59.999Z"})
    log.close()
    source = log.sink.path.parent
    day = report.build([source], START, end)
    assert day.superseded == 1 and not day.grants
    assert day.records == 1 and sum(day.totals.values()) == 0  # the allow, taken back
    assert sum(r.decisions for r in day.revisions.values()) == sum(day.totals.values())
    after = report.build([source], end, end + timedelta(days=1))  # the error: next period's
    assert after.totals == {"deny": 1, "error": 1} and after.superseded == 0


def test_with_a_key_records_after_the_last_checkpoint_make_the_report_unsigned(
        make_log: MakeLog, signer: KeyPair) -> None:
    log = make_log()
    log.append({"type": "decision", "decision": "allow", "reason": "allowed"})
    log.checkpoint()
    log.append({"type": "decision", "decision": "allow", "reason": "allowed",
                "identity": {"principal": "nkey:UFORGED"}, "account": "SYS"})
    log.close()
    folder = log.sink.path.parent
    keyed = report.build([folder], START, START + timedelta(days=1),
                         keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert keyed.verdict == "unsigned" and not keyed.intact
    unkeyed = report.build([folder], START, START + timedelta(days=1))
    assert unkeyed.verdict == "intact"  # nothing to check signatures with
