"""`authsvc policy diff --audit`: identities seen in the audit log are decided under both, and
a rule that reads what the log does not hold (claims, a session name, the requested role) is
named as undecided for them instead of taken as not matching."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.cli import main
from authsvc.domain import Identity, IdentitySource
from authsvc.policy import Policy, load_policy_text
from authsvc.policy.cases import Case, CaseConnection
from authsvc.policy.diff import PolicyDiff, diff
from authsvc.policy.gaps import Gaps, Undecided, undecided
from authsvc.policy.matchers import Facts
from authsvc.policy.seen import seen_identities

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

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



def test_a_case_is_shown_with_the_principal_it_stands_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(NEW)
    cases = tmp_path / "cases.yaml"
    cases.write_text(yaml.safe_dump({
        "apiVersion": "authsvc/v1", "kind": "PolicyTest", "policy": ["new.yaml"],
        "cases": [{"name": "the writer", "identity": {"source": "nkey", "subject": "UWRITER"},
                   "expect": {"decision": "deny"}}]}))
    argv = ["policy", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
            "--cases", str(cases)]
    assert main([*argv, "--format", "json"]) == 0
    (change,) = json.loads(capsys.readouterr().out)["identities"]
    assert (change["case"], change["principal"]) == ("the writer", "nkey:UWRITER")
    assert main(argv) == 0
    assert "identity 'the writer' [nkey:UWRITER]: allow APP -> deny no_matching_rule" \
        in capsys.readouterr().out.splitlines()


def test_an_unreadable_audit_record_is_an_error_with_its_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              ) -> None:
    (tmp_path / "p.yaml").write_text(OLD)
    audit = tmp_path / "audit.jsonl"
    audit.write_text(_record("UREADER", "h") + "\n{not json\n")
    assert main(["policy", "diff", str(tmp_path / "p.yaml"), str(tmp_path / "p.yaml"),
                 "--audit", str(audit)]) == 2
    assert f"{audit}:2" in capsys.readouterr().err


ROLE = "arn:aws:iam::123456789012:role/orders-lambda"
IDP = "https://idp.example"
AWS_OLD = f"""apiVersion: authsvc/v1
kind: Policy
rules:
  - id: orders-lambda
    match:
      source: aws_iam
      aws: {{arn: "{ROLE}", account: "123456789012"}}
    grant: {{account: APP, publish: {{allow: [orders.v2.created]}}}}
"""
AWS_NEW = AWS_OLD.replace("orders.v2.created", "orders.v2.updated")


def _aws_record(principal: str = f"aws:{ROLE}") -> dict[str, object]:
    return {"type": "decision", "decision": "allow",
            "identity": {"source": "aws_iam", "principal": principal,
                         "subject": "AROAEXAMPLE", "issuer": "sts.us-east-1.amazonaws.com"},
            "client": {"host": "10.0.0.9", "type": "nats", "kind": "Client"}}


def _oidc_record(subject: str = "worker-7") -> dict[str, object]:
    return {"type": "decision", "decision": "allow",
            "identity": {"source": "oidc", "principal": f"oidc:{IDP}#{subject}",
                         "subject": subject, "issuer": IDP},
            "client": {"host": "10.0.0.8", "type": "nats", "kind": "Client"}}



def _policy(*rules: Mapping[str, Any]) -> Policy:
    return load_policy_text(yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy",
                                            "rules": list(rules)}))


def _seen_diff(old: Policy, new: Policy, *records: Mapping[str, Any]) -> PolicyDiff:
    return diff(old, new, [], seen_identities(records, NOW))


def test_an_aws_identity_from_the_log_matches_rules_on_its_arn_and_account(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.yaml").write_text(AWS_OLD)
    (tmp_path / "new.yaml").write_text("apiVersion: authsvc/v1\nkind: Policy\n")
    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps(_aws_record()) + "\n")
    assert main(["policy", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
                 "--audit", str(audit), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == ["orders-lambda"]
    assert [(c["before"], c["after"], c["lost"]) for c in report["identities"]] == [
        ("allow APP", "deny no_matching_rule", ["pub allow orders.v2.created"])]


def test_an_aws_identity_gains_and_loses_subjects_with_nothing_undecided() -> None:
    result = _seen_diff(load_policy_text(AWS_OLD), load_policy_text(AWS_NEW), _aws_record())
    (change,) = result.identities
    assert (change.gained, change.lost) == (("pub allow orders.v2.updated",),
                                            ("pub allow orders.v2.created",))
    assert change.undecided_before == change.undecided_after == ()


def test_an_aws_principal_the_log_cannot_rebuild_leaves_arn_rules_undecided() -> None:
    result = _seen_diff(load_policy_text(AWS_OLD), load_policy_text(AWS_NEW),
                        _aws_record(principal="aws:not-an-arn"))
    (change,) = result.identities
    assert change.undecided_before == (Undecided("orders-lambda", ("aws.arn", "aws.account")),)
    assert change.undecided_after == change.undecided_before


def test_an_aws_session_name_rule_is_undecided() -> None:
    rule: dict[str, Any] = {"id": "by-session", "match": {"source": "aws_iam",
                                          "claims": {"session_name": {"equals": "deploy"}}},
            "grant": {"account": "APP", "publish": {"allow": ["deploy.run"]}}}
    old = _policy(rule)
    new = _policy({**rule, "grant": {"account": "APP", "publish": {"allow": ["deploy.all"]}}})
    (change,) = _seen_diff(old, new, _aws_record()).identities
    assert change.undecided_after == (Undecided("by-session", ("claims.session_name",)),)


EDGE: dict[str, Any] = {"id": "edge", "match": {"source": "oidc", "issuer": IDP,
                                "claims": {"role": {"equals": "edge-worker"}}},
        "grant": {"account": "APP", "publish": {"allow": ["orders.created"]}}}


def test_a_changed_claims_rule_is_reported_for_oidc_identities_as_undecided() -> None:
    new = {**EDGE, "grant": {"account": "APP", "publish": {"allow": ["orders.updated"]}}}
    (change,) = _seen_diff(_policy(EDGE), _policy(new), _oidc_record()).identities
    assert change.undecided_before == change.undecided_after == (
        Undecided("edge", ("claims.role",)),)
    assert (change.gained, change.lost) == ((), ())


def test_a_removed_claims_rule_is_reported_and_an_unchanged_one_is_not() -> None:
    other: dict[str, Any] = {"id": "other", "match": {"source": "nkey", "subject": "UOTHER"},
             "grant": {"account": "APP", "publish": {"allow": ["x"]}}}
    (change,) = _seen_diff(_policy(EDGE, other), _policy(other), _oidc_record()).identities
    assert change.undecided_before == (Undecided("edge", ("claims.role",)),)
    assert change.undecided_after == ()
    unchanged = _seen_diff(_policy(EDGE, other), _policy(EDGE), _oidc_record())
    assert unchanged.removed == ("other",) and unchanged.identities == ()


def test_a_condition_the_log_decides_rules_a_claims_rule_out() -> None:
    elsewhere = {**EDGE, "match": {**EDGE["match"], "issuer": "https://other.example"}}
    assert _seen_diff(_policy(elsewhere), _policy(), _oidc_record()).identities == ()


def test_templated_claims_and_requested_roles_are_undecided() -> None:
    templated: dict[str, Any] = {
        "id": "tenant", "role": "writer", "match": {"source": "oidc", "issuer": IDP},
        "grant": {"account": "APP", "publish": {"allow": ["orders.{{claims.tenant}}.created"]}}}
    (change,) = _seen_diff(_policy(templated), _policy(), _oidc_record()).identities
    assert change.undecided_before == (Undecided("tenant", ("role", "{{claims.tenant}}")),)


def test_an_aws_rule_without_a_source_is_undecided_for_an_oidc_identity() -> None:
    # The index files it under its literal ARN; an OIDC identity's claims might hold one.
    by_arn: dict[str, Any] = {"id": "by-arn", "match": {"aws": {"arn": ROLE}},
              "grant": {"account": "APP", "publish": {"allow": ["a"]}}}
    (change,) = _seen_diff(_policy(by_arn), _policy(), _oidc_record()).identities
    assert change.undecided_before == (Undecided("by-arn", ("aws.arn",)),)


def test_test_cases_are_complete_and_never_undecided() -> None:
    case = Case.model_validate({"name": "c", "identity": {
        "source": "oidc", "subject": "worker-7", "issuer": IDP,
        "attributes": {"role": "edge-worker"}}, "expect": {"decision": "allow"}})
    (change,) = diff(_policy(EDGE), _policy(), [case]).identities
    assert (change.before, change.after) == ("allow APP", "deny no_matching_rule")
    assert change.undecided_before == ()


def test_an_unreadable_host_rules_out_an_allow_but_not_a_deny() -> None:
    # A deny rule's source_cidrs holds for a host that is no address (fail closed), so only
    # the claim the log lacks decides it; the same allow rule is decided: it cannot match.
    match = '{source: oidc, claims: {role: {equals: admin}}, source_cidrs: ["10.0.0.0/8"]}'
    policy = load_policy_text(
        "apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
        f"  - {{id: admins, match: {match}, grant: {{account: APP}}}}\n"
        f"  - {{id: no-admins-here, effect: deny, match: {match}}}\n")
    identity = Identity(source=IdentitySource.OIDC, subject="u1", issuer=IDP,
                        principal="oidc:u1")
    facts = Facts(identity=identity, request=CaseConnection(host="localhost").build(NOW),
                  now=NOW)
    assert undecided(policy.rules, facts, Gaps(attributes=None)) == (
        Undecided("no-admins-here", ("claims.role",)),)
