"""Entra ID, Okta, Auth0 and Google on realistic claim sets: tenants, tid + oid, versions,
groups, Google's two issuer forms."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from authsvc.domain import DenyReason
from authsvc.settings_identity import OidcSettings
from authsvc.verifiers import build_oidc
from tests.unit.identity.test_providers import (
    KEY,
    TENANT_A,
    TENANT_B,
    identity,
    reason,
    verifier,
    verify,
)

V1 = f"https://sts.windows.net/{TENANT_A}/"
V2_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
OKTA = "https://corp.okta.com/oauth2/default"
AUTH0 = "https://acme.eu.auth0.com/"
GOOGLE_CLIENT = "1234567890-abc123.apps.googleusercontent.com"
GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v3/certs"


def entra_v2(**extra: Any) -> Any:
    return verifier(issuer=V2_TEMPLATE, provider="entra", tenants=[TENANT_A, TENANT_B],
                    audiences=["api://nats-prod"], **extra)


async def test_entra_v1_binds_tenant_and_object_id() -> None:
    v = verifier(issuer=V1, provider="entra", audiences=["api://nats-prod"])  # oid by default
    found = identity(await verify(v, "entra-v1-access"))
    oid = "6a2d3c4e-5f60-4718-8a9b-0c1d2e3f4a5b"
    assert (found.subject, found.principal) == (oid, f"oidc:{V1}#{oid}")
    attrs = found.attributes
    assert (attrs["tid"], attrs["oid"], attrs["app_id"]) == \
        (TENANT_A, oid, "5e3ce6c0-2b1f-4285-8d4b-75ee78787346")
    assert attrs["roles"] == ("Orders.Read",)
    assert attrs["scopes"] == ("Orders.Read", "user_impersonation")
    assert attrs["groups"] == ("a1b2c3d4-0000-4000-8000-000000000001",
                               "a1b2c3d4-0000-4000-8000-000000000002")
    assert attrs["sub"] == "Xk3Zg0Qy8m1yJ2p4lHq9t0vG7aB5cD6eF8hI9jK0lM"  # pairwise, per app


async def test_entra_multi_tenant_template_admits_listed_tenants_only() -> None:
    found = identity(await verify(entra_v2(), "entra-v2-access"))
    assert found.issuer == f"https://login.microsoftonline.com/{TENANT_B}/v2.0"
    assert found.attributes["roles"] == ("Orders.Write",)  # one role arrives as a string
    other = "https://login.microsoftonline.com/11111111-2222-4333-8444-555555555555/v2.0"
    refused = await verify(entra_v2(), "entra-v2-access", iss=other,
                           tid="11111111-2222-4333-8444-555555555555")
    assert reason(refused) is DenyReason.ISSUER_UNKNOWN


async def test_entra_subject_defaults_to_oid_and_an_explicit_claim_wins() -> None:
    oid, sub = "0f1e2d3c-4b5a-4968-8776-655443322110", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9"
    issuer = f"https://login.microsoftonline.com/{TENANT_B}/v2.0"
    by_default = identity(await verify(entra_v2(), "entra-v2-access"))
    assert (by_default.subject, by_default.principal) == (oid, f"oidc:{issuer}#{oid}")
    assert by_default.attributes["sub"] == sub
    explicit = identity(await verify(entra_v2(subject_claim="sub"), "entra-v2-access"))
    assert (explicit.subject, explicit.principal) == (sub, f"oidc:{issuer}#{sub}")


@pytest.mark.parametrize(("name", "changes", "code"), [
    ("entra-v2-access", {"tid": TENANT_A}, DenyReason.TOKEN_CLAIM_INVALID),
    ("entra-v2-access", {"tid": None}, DenyReason.TOKEN_CLAIM_MISSING),
    ("entra-v2-access", {"ver": "1.0"}, DenyReason.TOKEN_CLAIM_INVALID),
    ("entra-v2-access", {"oid": None}, DenyReason.TOKEN_CLAIM_MISSING),
    ("entra-v2-overage", {}, DenyReason.TOKEN_CLAIM_INVALID),
    ("entra-v2-access", {"hasgroups": True}, DenyReason.TOKEN_CLAIM_INVALID),
])
async def test_entra_refusals(name: str, changes: dict[str, Any], code: DenyReason) -> None:
    assert reason(await verify(entra_v2(), name, **changes)) is code


async def test_okta_groups_list() -> None:
    v = verifier(issuer=OKTA, provider="okta", audiences=["api://nats"],
                 claims={"tenant": "string", "email_verified": "bool"})
    found = identity(await verify(v, "okta-access"))
    assert found.attributes["groups"] == ("00g1tenantusers", "00g2everyone")
    assert found.attributes["tenant"] == "acme"


async def test_auth0_namespaced_groups_string() -> None:
    v = verifier(issuer=AUTH0, provider="auth0", audiences=["https://nats.acme.example"],
                 groups_claim="https://acme.example/groups")
    found = identity(await verify(v, "auth0-access"))
    assert found.principal == f"oidc:{AUTH0}#auth0|64f1c2d3e4b5a6978812ab34"
    assert found.attributes["groups"] == ("ops",)
    bad = await verify(v, "auth0-access", **{"https://acme.example/groups": ["ops", 7]})
    assert reason(bad) is DenyReason.TOKEN_CLAIM_INVALID


@pytest.mark.parametrize("form", ["https://accounts.google.com", "accounts.google.com"])
async def test_google_issuer_forms_each_route_to_their_block(form: str) -> None:
    claims = {"hd": "string", "email": "string", "email_verified": "bool"}
    v = build_oidc(OidcSettings.model_validate({"issuers": [
        {"issuer": name, "keys": [KEY.jwk()], "audiences": [GOOGLE_CLIENT], "claims": claims}
        for name in ("https://accounts.google.com", "accounts.google.com")]}))
    found = identity(await verify(v, "google-id", iss=form))
    assert found.principal == f"oidc:{form}#110169484474386276334"
    assert (found.attributes["hd"], found.attributes["email_verified"]) == ("example.com", True)


def test_google_bare_issuer_takes_keys_from_jwks_uri() -> None:
    bare = {"issuer": "accounts.google.com", "audiences": [GOOGLE_CLIENT],
            "jwks_uri": GOOGLE_CERTS}
    assert OidcSettings.model_validate({"issuers": [bare]}).issuers[0].issuer == bare["issuer"]


@pytest.mark.parametrize("issuer", [
    {"issuer": V2_TEMPLATE, "provider": "entra"},                           # no tenants
    {"issuer": V2_TEMPLATE, "provider": "entra", "tenants": ["acme"]},       # not a GUID
    {"issuer": "https://login.microsoftonline.com/common/v2.0", "provider": "entra"},
    {"issuer": f"https://login.microsoftonline.com/{TENANT_A}/v2.0", "provider": "entra",
     "tenants": [TENANT_B]},                                                 # not its tenant
    {"issuer": V2_TEMPLATE, "tenants": [TENANT_A]},                          # not entra
    {"issuer": "https://acme.eu.auth0.com", "provider": "auth0"},            # no slash
    {"issuer": OKTA, "subject_claim": "email"},                              # mutable
    {"issuer": "accounts.google.com"},                          # no https://: no discovery
    {"issuer": OKTA, "provider": "okta", "claims": {"groups": "strings"}},   # mapped twice
    {"issuer": "https://token.actions.githubusercontent.com", "provider": "github",
     "claims": {"repository_id": "int"}},                                     # provider's own
])
def test_settings_refuse_provider_misconfiguration(issuer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OidcSettings.model_validate({"issuers": [{"audiences": ["nats"], **issuer}]})


def test_expanded_issuers_count_as_duplicates() -> None:
    explicit = f"https://login.microsoftonline.com/{TENANT_A}/v2.0"
    with pytest.raises(ValidationError):
        OidcSettings.model_validate({"issuers": [
            {"issuer": V2_TEMPLATE, "provider": "entra", "tenants": [TENANT_A],
             "audiences": ["nats"]},
            {"issuer": explicit, "provider": "entra", "audiences": ["nats"]}]})
