"""``issuer_unbound``: an allow rule that may match OIDC identities by subject, subject glob,
groups or claims must name the issuer, since their values mean something only per issuer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from authsvc.cli import main
from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

ISSUER = "https://idp.example"
NKEY = "UAEXAMPLE2PLACEHOLDER2REPLACE2WITH2YOUR2SERVICE2KEY2BTET"


def codes(match: dict[str, object], effect: str = "allow") -> list[str]:
    rule: dict[str, object] = {"id": "r", "effect": effect, "match": match}
    if effect == "allow":
        rule["grant"] = {"account": "APP", "publish": {"allow": ["svc.a"]}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text))]


@pytest.mark.parametrize("match", [
    {"source": "oidc", "subject": "alice"},
    {"source": "oidc", "subject_glob": "system:serviceaccount:prod:*"},
    {"source": "oidc", "groups": {"contains_any": ["admins"]}},
    {"source": "oidc", "subject": "alice", "claims": {"tenant": {"equals": "acme"}}},
    # no source: an OIDC token whose sub is this string matches as well
    {"subject": NKEY},
    {"subject_glob": "repo:acme/api:*"},
    {"groups": {"contains_any": ["admins"]}},
    {"source": "oidc", "claims": {"tenant": {"equals": "acme"}}},  # any issuer's "acme"
])
def test_a_rule_without_issuer_warns(match: dict[str, object]) -> None:
    assert "issuer_unbound" in codes(match)


@pytest.mark.parametrize("match", [
    {"source": "oidc", "issuer": ISSUER, "subject": "alice"},
    {"issuer": ISSUER, "groups": {"contains_any": ["admins"]}},
    {"source": "oidc", "issuer": ISSUER, "subject_glob": "system:serviceaccount:prod:*"},
    {"source": "nkey", "subject": NKEY},
    {"source": "aws_iam", "subject_glob": "AROA*"},
    {"aws": {"arn": "arn:aws:iam::123456789012:role/orders"}, "subject_glob": "AROA*"},
    {"source": "oidc", "issuer": ISSUER, "claims": {"tenant": {"equals": "acme"}}},
])
def test_a_rule_with_issuer_or_not_for_oidc_does_not(match: dict[str, object]) -> None:
    assert "issuer_unbound" not in codes(match)


def test_a_deny_rule_does_not_warn() -> None:
    assert "issuer_unbound" not in codes({"source": "oidc", "subject": "alice"}, effect="deny")


def test_policy_check_locates_the_warning_at_its_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
                    "  - id: scoped\n"
                    f"    match: {{source: oidc, issuer: '{ISSUER}', subject: alice}}\n"
                    "    grant: {account: APP, publish: {allow: [svc.a]}}\n"
                    "  - id: any-issuer\n"
                    "    match: {source: oidc, subject: alice}\n"
                    "    grant: {account: APP, publish: {allow: [svc.a]}}\n")
    assert main(["policy", "check", "--strict", "--format", "json", str(path)]) == 1
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [(w["code"], w["rule"], w["file"], w["line"], w["column"]) for w in warnings] == [
        ("issuer_unbound", "any-issuer", str(path), 7, 5)]
