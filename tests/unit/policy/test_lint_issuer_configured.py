"""``issuer_not_configured``: with the deployment's settings, a rule on an OIDC issuer the
settings do not route (compared exactly, Entra ``{tenantid}`` templates expanded) never
matches; a deny rule or guardrail written that way protects nothing. Without settings there
is nothing to compare with, and nothing is flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.cli import main
from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint
from authsvc.policy_gates import Built, RejectReason, ReloadSources, vet
from authsvc.policy_worker import build_elsewhere
from authsvc.server import reload_sources
from authsvc.settings import load_settings
from authsvc.settings_identity import OidcSettings
from tests.support.deploy import Deployment
from tests.support.idp import SigningKey

AUTH0 = "https://acme.eu.auth0.com/"
GOOGLE = "https://accounts.google.com"
TENANT = "2f1c9a4e-8d7b-4e5f-9a3c-1b2d3e4f5a6b"
OTHER_TENANT = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ENTRA = "https://login.microsoftonline.com/{tenantid}/v2.0"
CONFIGURED = (AUTH0, GOOGLE, f"https://login.microsoftonline.com/{TENANT}/v2.0")
KEY = SigningKey.rsa("k1")


def policy(*rules: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": list(rules)})


def allow(rule_id: str, **match: Any) -> dict[str, Any]:
    return {"id": rule_id, "match": match,
            "grant": {"account": "APP", "publish": {"allow": ["orders.v2.created"]}}}


def deny(rule_id: str, **match: Any) -> dict[str, Any]:
    return {"id": rule_id, "effect": "deny", "match": match}


def flagged(*rules: dict[str, Any], issuers: tuple[str, ...] | None = CONFIGURED) -> list[str]:
    found = lint(load_policy_text(policy(*rules)), oidc_issuers=issuers)
    return [w.rule_id for w in found if w.code == "issuer_not_configured"]


@pytest.mark.parametrize("rule", [
    deny("auth0-no-slash", source="oidc", issuer=AUTH0.rstrip("/"),
         groups={"contains_any": ["contractors"]}),
    allow("google-short", source="oidc", issuer="accounts.google.com",
          claims={"hd": {"equals": "example.com"}}),
    allow("entra-other-tenant", issuer=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
          subject="oid-1"),
    allow("entra-template", issuer=ENTRA, subject="oid-1"),    # the template is no issuer
    {"id": "guard", "effect": "deny", "match": {"issuer": "https://idp.typo.example"},
     "permissions": {"publish": ["payments.>"]}},
])
def test_a_rule_on_an_issuer_the_settings_do_not_route_warns(rule: dict[str, Any]) -> None:
    assert flagged(rule) == [rule["id"]]


@pytest.mark.parametrize("rule", [
    deny("auth0", source="oidc", issuer=AUTH0, groups={"contains_any": ["contractors"]}),
    allow("google", issuer=GOOGLE, claims={"hd": {"equals": "example.com"}}),
    allow("entra", issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0", subject="oid-1"),
    allow("any-oidc", source="oidc", claims={"hd": {"equals": "example.com"}}),  # no issuer
    allow("aws", source="aws_iam", issuer="sts.amazonaws.com",
          aws={"account": "111122223333"}),
    allow("sts-host", issuer="sts.eu-west-1.amazonaws.com", aws={"account": "111122223333"}),
    allow("sts-no-source", issuer="sts.amazonaws.com", subject="AROAEXAMPLEID"),
])
def test_configured_issuers_and_other_sources_do_not(rule: dict[str, Any]) -> None:
    assert flagged(rule) == []


def test_without_settings_nothing_is_flagged() -> None:
    assert flagged(allow("google-short", issuer="accounts.google.com", subject="1"),
                   issuers=None) == []


def test_entra_templates_expand_to_one_issuer_per_tenant() -> None:
    settings = OidcSettings.model_validate({"issuers": [
        {"issuer": ENTRA, "provider": "entra", "tenants": [TENANT], "audiences": ["api://nats"],
         "keys": [KEY.jwk()]},
        {"issuer": GOOGLE, "audiences": ["123.apps.googleusercontent.com"],
         "keys": [KEY.jwk()]}]})
    assert settings.exact_issuers == (f"https://login.microsoftonline.com/{TENANT}/v2.0", GOOGLE)


def _deployment(tmp_path: Path, *rules: dict[str, Any], **policy_settings: Any) -> Deployment:
    d = Deployment(tmp_path, rules=list(rules))
    d.settings_extra = {"policy": policy_settings, "identity": {"oidc": {"issuers": [
        {"issuer": AUTH0, "provider": "auth0", "audiences": ["nats"], "keys": [KEY.jwk()],
         "groups_claim": "https://acme.example/groups"},
        {"issuer": ENTRA, "provider": "entra", "tenants": [TENANT], "audiences": ["api://nats"],
         "keys": [KEY.jwk()]}]}}}
    d.write()
    return d


RULES = (allow("staff", source="oidc", issuer=AUTH0, groups={"contains_any": ["staff"]}),
         deny("block", source="oidc", issuer=AUTH0.rstrip("/"),
              groups={"contains_any": ["contractors"]}),
         allow("entra", issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0", subject="o"))


def test_policy_check_with_settings_flags_the_rule_at_its_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _deployment(tmp_path, *RULES, reject_warnings=True)
    assert main(["policy", "check", "-c", str(d.settings_file), "--format", "json"]) == 1
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [(w["code"], w["rule"]) for w in warnings] == [("issuer_not_configured", "block")]
    # without settings, the same files pass: lint cannot know the issuers
    assert main(["policy", "check", "--strict", str(tmp_path / "policy.yaml")]) == 0


async def test_serve_and_reload_refuse_it_with_reject_warnings(tmp_path: Path) -> None:
    d = _deployment(tmp_path, *RULES, reject_warnings=True)
    sources = reload_sources(load_settings(d.settings_file))
    assert sources.oidc_issuers == (AUTH0, f"https://login.microsoftonline.com/{TENANT}/v2.0")
    loaded = load_policy_text(policy(*RULES))
    rejected = vet(loaded, sources)
    assert rejected is not None and rejected.reason is RejectReason.LINT_WARNINGS
    assert vet(loaded, ReloadSources(paths=sources.paths, reject_warnings=True)) is None
    built = await build_elsewhere(sources)  # the reload's child gets the issuers too
    assert isinstance(built, Built) and built.vetted is not None
    assert built.vetted.reason is RejectReason.LINT_WARNINGS
