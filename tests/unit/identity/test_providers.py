"""Provider profiles on realistic claim sets: what each IdP's token becomes, and its refusals.

Verifiers are built from settings (``build_oidc``) with the test key as a static key, so the
provider defaults, the Entra tenant expansion and the settings checks are exercised as a
deployment would use them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    Secret,
    ServerInfo,
)
from authsvc.identity.oidc import OidcVerifier
from authsvc.settings_identity import OidcSettings
from authsvc.verifiers import build_oidc
from tests.support.claimsets import mint_claim_set
from tests.support.idp import SigningKey

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
KEY = SigningKey.rsa("provider-1")
GITHUB = "https://token.actions.githubusercontent.com"
CLUSTER = "https://oidc.cluster.example"
ACCESS = "https://acme.cloudflareaccess.com"
AUD_TAG = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228"
TENANT_A = "2f1c9a4e-8d7b-4e5f-9a3c-1b2d3e4f5a6b"
TENANT_B = "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a"


def verifier(**issuer: Any) -> OidcVerifier:
    return build_oidc(OidcSettings.model_validate(
        {"issuers": [{"keys": [KEY.jwk()], **issuer}]}))


async def verify(v: OidcVerifier, name: str, **changes: Any) -> Identity | Deny:
    token = mint_claim_set(KEY, name, T - 10, **changes)
    request = ConnectRequest(server=ServerInfo(id="N1"), user_nkey="U2", client=ClientInfo(),
                             connect=ConnectOptions(auth_token=Secret(token)), request_id="r",
                             issued_at=NOW, expires_at=NOW)
    result = await v.verify(request, now=NOW)
    assert result is not None
    return result


def identity(result: Identity | Deny) -> Identity:
    assert isinstance(result, Identity), result
    return result


def reason(result: Identity | Deny) -> DenyReason:
    assert isinstance(result, Deny), result
    return result.reason


# --- GitHub Actions ---------------------------------------------------------------------

def github() -> OidcVerifier:
    return verifier(issuer=GITHUB, provider="github", audiences=["nats://prod"],
                    algorithms=["RS256"])


async def test_github_environment_job() -> None:
    found = identity(await verify(github(), "github-actions-environment"))
    assert found.principal == f"oidc:{GITHUB}#repo:acme/api:environment:prod"
    attrs = found.attributes
    assert (attrs["repository"], attrs["repository_id"], attrs["repository_owner_id"]) == \
        ("acme/api", "74", "65")
    assert (attrs["environment"], attrs["ref"], attrs["ref_protected"]) == \
        ("prod", "refs/heads/main", True)
    assert attrs["job_workflow_ref"] == "acme/api/.github/workflows/deploy.yml@refs/heads/main"
    assert attrs["runner_environment"] == "github-hosted"
    assert {"repository", "repository_owner", "environment", "actor"} <= \
        set(attrs["mutable_claims"])  # type: ignore[arg-type]


async def test_github_tag_run_of_a_reusable_workflow() -> None:
    attrs = identity(await verify(github(), "github-actions-reusable-tag")).attributes
    assert attrs["ref_type"] == "tag"
    assert attrs["ref_protected"] is False
    assert attrs["job_workflow_ref"].startswith("acme/shared-workflows/")  # type: ignore[union-attr]
    assert attrs["workflow_ref"].startswith("acme/api/")  # type: ignore[union-attr]
    assert attrs["enterprise"] == "acme-corp"


async def test_github_pull_request_subject() -> None:
    found = identity(await verify(github(), "github-actions-pull-request"))
    assert found.subject == "repo:acme/api:pull_request"
    assert (found.attributes["head_ref"], found.attributes["base_ref"]) == \
        ("feature/faster-orders", "main")


@pytest.mark.parametrize("changes", [{"repository_id": 74}, {"ref_protected": "yes"},
                                     {"ref_protected": 1}])
async def test_github_claims_of_the_wrong_type_are_refused(changes: dict[str, Any]) -> None:
    result = await verify(github(), "github-actions-environment", **changes)
    assert reason(result) is DenyReason.TOKEN_CLAIM_INVALID


async def test_github_default_audience_is_refused() -> None:
    result = await verify(github(), "github-actions-environment", aud="https://github.com/acme")
    assert reason(result) is DenyReason.TOKEN_AUDIENCE_MISMATCH


# --- Kubernetes ---------------------------------------------------------------------------

def kubernetes() -> OidcVerifier:
    return verifier(issuer=CLUSTER, provider="kubernetes", audiences=["nats"])


async def test_kubernetes_bound_token_is_flattened() -> None:
    found = identity(await verify(kubernetes(), "kubernetes-projected"))
    assert found.subject == "system:serviceaccount:payments:api"
    attrs = found.attributes
    assert (attrs["k8s_namespace"], attrs["k8s_serviceaccount"], attrs["k8s_pod"]) == \
        ("payments", "api", "api-7d9f8c6b5-x2k4q")
    assert attrs["k8s_serviceaccount_uid"] == "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
    assert attrs["k8s_node"] == "ip-10-0-1-7.eu-west-1.compute.internal"
    assert "mutable_claims" not in attrs


async def test_kubernetes_token_request_has_no_pod() -> None:
    attrs = identity(await verify(kubernetes(), "kubernetes-token-request")).attributes
    assert attrs["k8s_namespace"] == "billing"
    assert "k8s_pod" not in attrs and "k8s_node" not in attrs


@pytest.mark.parametrize(("changes", "code"), [
    ({"kubernetes.io": None}, DenyReason.TOKEN_CLAIM_MISSING),
    ({"kubernetes.io": {"namespace": "payments"}}, DenyReason.TOKEN_CLAIM_MISSING),
    ({"kubernetes.io": {"namespace": "payments", "serviceaccount": "api"}},
     DenyReason.TOKEN_CLAIM_INVALID),
    ({"sub": "system:serviceaccount:kube-system:api"}, DenyReason.TOKEN_CLAIM_INVALID),
    ({"aud": ["https://kubernetes.default.svc.cluster.local"]},
     DenyReason.TOKEN_AUDIENCE_MISMATCH),
])
async def test_kubernetes_refusals(changes: dict[str, Any], code: DenyReason) -> None:
    assert reason(await verify(kubernetes(), "kubernetes-projected", **changes)) is code


# --- Cloudflare Access ----------------------------------------------------------------------

def access() -> OidcVerifier:
    return verifier(issuer=ACCESS, provider="cloudflare_access", audiences=[AUD_TAG],
                    algorithms=["RS256"])


async def test_cloudflare_access_person() -> None:
    found = identity(await verify(access(), "cloudflare-access-user"))
    assert found.principal == f"oidc:{ACCESS}#7335d417-61da-459d-899c-0a01c76a2f94"
    attrs = found.attributes
    assert (attrs["email"], attrs["country"], attrs["cf_service_token"]) == \
        ("user@example.com", "US", False)


async def test_cloudflare_access_service_token_is_its_client_id() -> None:
    found = identity(await verify(access(), "cloudflare-access-service-token"))
    assert found.subject == "e367826f93b8d71185e03fe518aff3b4.access"
    assert found.principal == f"oidc:{ACCESS}#e367826f93b8d71185e03fe518aff3b4.access"
    assert found.attributes["cf_service_token"] is True


@pytest.mark.parametrize(("name", "changes", "code"), [
    ("cloudflare-access-user", {"type": "org"}, DenyReason.TOKEN_CLAIM_INVALID),
    ("cloudflare-access-user", {"type": None}, DenyReason.TOKEN_CLAIM_INVALID),
    ("cloudflare-access-service-token", {"common_name": None}, DenyReason.TOKEN_CLAIM_MISSING),
    ("cloudflare-access-service-token", {"aud": ["another-app"]},
     DenyReason.TOKEN_AUDIENCE_MISMATCH),
])
async def test_cloudflare_access_refusals(name: str, changes: dict[str, Any],
                                          code: DenyReason) -> None:
    assert reason(await verify(access(), name, **changes)) is code


async def test_empty_sub_is_refused_for_other_issuers() -> None:
    plain = verifier(issuer=ACCESS, audiences=[AUD_TAG])
    assert reason(await verify(plain, "cloudflare-access-service-token")) is \
        DenyReason.TOKEN_CLAIM_MISSING
