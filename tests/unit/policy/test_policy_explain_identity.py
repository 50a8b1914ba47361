"""``authsvc policy explain --claims``: one stated identity against a policy, read the way
the verifiers read a verified one (the token path runs against a real issuer in
tests/integration/identity/test_explain_token.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from authsvc.cli import main

ROOT = Path(__file__).parents[3]
EXPLAIN = ROOT / "policies" / "examples" / "explain"
SETTINGS = EXPLAIN / "authsvc.yaml"
ALICE = EXPLAIN / "okta-alice.json"
LAMBDA_CALLER = EXPLAIN / "lambda-caller.json"
IN_ALICES_TOKEN = "2026-03-02T10:00:00Z"  # between her token's iat and exp


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(["policy", "explain", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def _claims(tmp_path: Path, **changes: Any) -> Path:
    claims = json.loads(ALICE.read_text())
    claims.update(changes)
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    return path


def test_okta_claims_are_read_through_the_issuer_block_and_allowed(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(ALICE),
                            "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["decision"], report["account"]) == (0, "allow", "TENANTS")
    assert (report["input"], report["verified"], report["stage"]) == ("claims", False, "policy")
    assert report["rules"] == ["okta-tenant-users"]
    identity = report["identity"]
    assert identity["principal"] == "oidc:https://corp.okta.com/oauth2/default#00u1alice"
    # groups come from the okta provider's groups claim, tenant from the declared claims;
    # an undeclared claim (email) is not an attribute.
    assert identity["attributes"]["groups"] == ["00g1tenantusers"]
    assert identity["attributes"]["tenant"] == "acme"
    assert "email" not in identity["attributes"]
    assert "tenants.acme.orders.>" in report["permissions"]["sub"]["allow"]
    # the grant's 1h TTL is capped by the token's exp, 50 minutes after --at
    assert report["ttl_seconds"] <= 50 * 60
    assert {"rule": "okta-block-contractors", "failed": "groups"} in [
        {k: t[k] for k in ("rule", "failed")} for t in report["not_matched"]]


def test_a_contractor_is_denied_by_the_deny_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _claims(tmp_path, groups=["00g1tenantusers", "00g9contractors"])
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(path),
                            "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["decision"], report["reason"]) == (0, "deny", "explicit_deny")
    assert report["rules"] == ["okta-block-contractors"]


def test_a_claim_of_the_wrong_declared_type_is_what_the_verifier_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _claims(tmp_path, email_verified="yes")
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(path),
                            "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["stage"], report["reason"]) == (0, "identity", "token_claim_invalid")
    assert (report["identity"], report["matched"]) == (None, [])


def test_claims_are_checked_by_the_issuers_rules_at_the_time_asked_about(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(ALICE)], capsys)
    assert (code, report["decision"], report["reason"]) == (0, "deny", "token_expired")
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(ALICE),
                            "--at", "2026-03-02T11:00:00+00:00"], capsys)
    assert report["reason"] == "token_expired"
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(ALICE),
                            "--at", "2026-03-02T09:00:00+00:00"], capsys)
    assert report["reason"] == "token_not_yet_valid"  # before its iat


@pytest.mark.parametrize(("changes", "reason"), [
    ({"iss": "https://evil.example"}, "issuer_unknown"),
    ({"exp": "tomorrow"}, "token_claim_invalid"),
    ({"exp": None}, "token_claim_missing"),
    ({"sub": 7}, "token_claim_missing"),
    ({"aud": "someone-else"}, "token_audience_mismatch"),
    ({"iat": None}, "token_claim_missing"),  # the issuer requires iat (the default)
    ({"exp": 1772445000 + 2 * 86400}, "token_lifetime_too_long"),
])
def test_claims_the_service_would_refuse_are_refused_with_its_reason(
        changes: dict[str, Any], reason: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    claims = json.loads(ALICE.read_text())
    for key, value in changes.items():
        if value is None:
            del claims[key]
        else:
            claims[key] = value
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(path),
                            "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["decision"], report["reason"]) == (0, "deny", reason)


def test_an_aws_caller_identity_needs_no_settings_and_is_canonicalised(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["--policy", str(ROOT / "policies/examples/lambda.yaml"),
                            "--claims", str(LAMBDA_CALLER)], capsys)
    assert (code, report["decision"], report["account"]) == (0, "allow", "ORDERS")
    identity = report["identity"]
    assert identity["attributes"]["arn"] == "arn:aws:iam::111122223333:role/orders-lambda"
    assert identity["subject"] == "AROAEXAMPLEORDERS"
    assert "session_name" not in identity["attributes"]  # not trusted unless enabled
    assert "orders.v2.created" in report["permissions"]["pub"]["allow"]


def test_a_same_named_role_in_another_account_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text(LAMBDA_CALLER.read_text().replace("111122223333", "999999999999"))
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(other)], capsys)
    assert (code, report["decision"], report["reason"]) == (0, "deny", "no_matching_rule")


@pytest.mark.parametrize(("federated_users", "stage", "reason"), [
    (False, "identity", "sts_caller_not_allowed"), (True, "policy", "no_matching_rule")])
def test_a_federated_user_is_refused_unless_the_settings_accept_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], federated_users: bool, stage: str,
        reason: str) -> None:
    caller = tmp_path / "federated.json"
    caller.write_text(json.dumps({"UserId": "111122223333:orders-lambda",
                                  "Account": "111122223333",
                                  "Arn": "arn:aws:sts::111122223333:federated-user/orders-lambda"}))
    settings = tmp_path / "authsvc.yaml"
    settings.write_text(json.dumps({  # JSON is YAML
        "policy": {"paths": [str(ROOT / "policies/examples/lambda.yaml")]},
        "identity": {"aws_iam": {"server_id": "nats.example.com",
                                 "federated_users": federated_users}}}))
    code, report, _ = _run(["-c", str(settings), "--claims", str(caller)], capsys)
    assert (code, report["decision"], report["stage"], report["reason"]) == (
        0, "deny", stage, reason)


def test_connection_facts_change_the_decision(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    worker = tmp_path / "worker.json"
    worker.write_text(json.dumps({
        "iss": "https://tokens.example.com", "sub": "worker-shop", "aud": "nats-edge",
        "iat": 1772445000, "exp": 1772448600, "zone": "shop"}))
    base = ["-c", str(SETTINGS), "--claims", str(worker), "--at", IN_ALICES_TOKEN]
    code, report, _ = _run([*base, "--type", "WEBSOCKET"], capsys)
    assert (code, report["decision"], report["account"]) == (0, "allow", "EDGE")
    code, report, _ = _run(base, capsys)
    assert (report["decision"], report["reason"]) == ("deny", "connection_not_allowed")


def test_a_grant_into_the_callout_account_is_denied_as_serve_denies_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
                      "  - id: into-auth\n    match: {source: aws_iam}\n"
                      "    grant: {account: AUTH, subscribe: {allow: [a]}}\n")
    code, report, _ = _run(["--policy", str(policy), "--claims", str(LAMBDA_CALLER)], capsys)
    assert (code, report["decision"], report["reason"]) == (0, "deny", "account_forbidden")
    assert report["rules"] == ["into-auth"]


def test_text_output_names_the_identity_and_that_it_was_not_verified(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", "-c", str(SETTINGS), "--claims", str(ALICE),
                 "--at", IN_ALICES_TOKEN]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"claims {ALICE}: allow TENANTS"
    assert "NOT verified" in out[1]


def test_claims_may_come_from_standard_input(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(LAMBDA_CALLER.read_text()))
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", "-"], capsys)
    assert (code, report["decision"], report["file"]) == (0, "allow", "-")


def _error_codes(report: Any) -> list[str]:
    return [error["code"] for error in report["errors"]]


@pytest.mark.parametrize(("argv", "code"), [
    (["--claims", str(ALICE), "--policy", "policies/examples"], "settings_required"),
    (["--token", str(ALICE), "--policy", "policies/examples"], "settings_required"),
    (["--claims", str(LAMBDA_CALLER)], "no_paths"),
    ([], "no_paths"),
    (["policies/examples/tests/okta.yaml", "--claims", str(ALICE)], "usage_invalid"),
    (["policies/examples/tests/okta.yaml", "--host", "10.0.0.1"], "usage_invalid"),
    (["-c", str(SETTINGS), "--claims", str(ALICE), "--host", "example.com"], "usage_invalid"),
    (["-c", str(SETTINGS), "--claims", str(ALICE), "--at", "noon"], "time_invalid"),
    (["-c", str(SETTINGS), "--claims", "/nonexistent.json"], "file_not_found"),
    (["-c", str(ROOT / "nope.yaml"), "--claims", str(ALICE)], "config_invalid"),
])
def test_usage_and_input_faults_exit_2_with_a_code(
        argv: list[str], code: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    exit_code, report, err = _run(argv, capsys)
    assert (exit_code, _error_codes(report)) == (2, [code]), err


@pytest.mark.parametrize(("text", "code", "line"), [
    ('{\n  "iss": "x",\n  "sub": \n}', "claims_invalid", 4),
    ("[1, 2]", "claims_invalid", 0),
    ('{"name": "nobody"}', "claims_unrecognised", 0),
    ("   \n", "input_empty", 0),
])
def test_a_claims_file_that_is_not_an_identity_is_located(
        text: str, code: str, line: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "claims.json"
    path.write_text(text)
    exit_code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(path)], capsys)
    (error,) = report["errors"]
    assert (exit_code, error["code"], error["line"], error["file"]) == (2, code, line, str(path))


@pytest.mark.parametrize(("file", "extra", "account", "rule"), [
    ("okta-alice.json", [], "TENANTS", "okta-tenant-users"),
    ("github-deploy.json", [], "DEPLOY", "gha-deploy-api"),
    ("kubernetes-payments.json", [], "APPS", "k8s-namespace-services"),
    ("worker-shop.json", ["--type", "WEBSOCKET"], "EDGE", "workers-edge-events"),
    ("lambda-caller.json", [], "ORDERS", "lambda-orders-writer"),
    ("sfn-caller.json", [], "ORDERS", "sfn-fulfilment"),
])
def test_each_example_scenario_has_a_claims_file_its_policy_admits(
        file: str, extra: list[str], account: str, rule: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(EXPLAIN / file),
                            "--at", IN_ALICES_TOKEN, *extra], capsys)
    assert (code, report["decision"], report["account"], report["rules"]) == (
        0, "allow", account, [rule])
    assert report["missing_claims"] == []


def test_missing_claims_are_those_rules_for_this_issuer_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claims = json.loads(ALICE.read_text())
    del claims["email_verified"]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    code, report, _ = _run(["-c", str(SETTINGS), "--claims", str(path),
                            "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["reason"]) == (0, "no_matching_rule")
    # not zone, k8s_namespace or repository: those rules are for other issuers
    assert report["missing_claims"] == ["email_verified"]


def test_a_claim_in_the_payload_the_settings_do_not_map_is_named_as_such(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
                      "  - id: by-client\n"
                      "    match: {source: oidc, claims: {cid: {present: true}}}\n"
                      "    grant: {account: APP, subscribe: {allow: [a.b]}}\n")
    code, report, _ = _run(["-c", str(SETTINGS), "--policy", str(policy), "--claims",
                            str(ALICE), "--at", IN_ALICES_TOKEN], capsys)
    assert (code, report["reason"]) == (0, "no_matching_rule")
    # okta-alice.json carries cid, but the issuer's block does not declare it
    assert (report["missing_claims"], report["unmapped_claims"]) == (["cid"], ["cid"])


def test_text_output_names_the_policy_revision(capsys: pytest.CaptureFixture[str]) -> None:
    _, report, _ = _run(["-c", str(SETTINGS), "--claims", str(LAMBDA_CALLER)], capsys)
    assert main(["policy", "explain", "-c", str(SETTINGS), "--claims", str(LAMBDA_CALLER)]) == 0
    assert f"  policy revision: {report['revision'][:12]}" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("option", "text", "code"), [
    ("--claims", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n", "claims_is_token"),
    ("--token", ALICE.read_text(), "token_is_claims"),
    ("--token", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "token_has_scheme"),
])
def test_a_token_and_its_claims_mixed_up_are_told_apart(
        option: str, text: str, code: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input"
    path.write_text(text)
    exit_code, report, err = _run(["-c", str(SETTINGS), option, str(path)], capsys)
    assert (exit_code, _error_codes(report)) == (2, [code])
    assert "eyJzdWIiOiJ4In0" not in err  # the token is never echoed


@pytest.mark.parametrize("given", ["policies/examples/okta.yaml",
                                   "policies/examples/tests/okta.yaml"])
def test_a_policy_or_test_file_given_as_settings_says_where_it_goes(
        given: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    exit_code, report, _ = _run(["-c", given, "--claims", str(LAMBDA_CALLER)], capsys)
    assert (exit_code, _error_codes(report)) == (2, ["wrong_kind"])
    assert main(["policy", "check", "-c", given, "policies/examples/"]) == 2
