"""Provider-shaped tokens through a real nats-server and ``authsvc serve``.

One deployment trusts four issuers configured as a user would: GitHub Actions, a
Kubernetes cluster and an Entra template with their real ``iss`` values (keys from the
loopback issuer's ``/jwks``), and a Cloudflare Access team whose keys come from the default
``/cdn-cgi/access/certs`` path of its (loopback) team domain.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.domain import DenyReason
from tests.support.claimsets import mint_claim_set
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey

INFO = "$SYS.REQ.USER.INFO"
pytestmark = pytest.mark.filterwarnings("ignore:parameter 'timeout':DeprecationWarning")
KEY = SigningKey.rsa("providers-e2e")
GITHUB = "https://token.actions.githubusercontent.com"
CLUSTER = "https://oidc.cluster.example"
ENTRA = "https://login.microsoftonline.com/{tenantid}/v2.0"
TENANT_B = "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a"
AUD_TAG = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228"
CLIENT_ID = "e367826f93b8d71185e03fe518aff3b4.access"


def _grant(account: str, *publish: str, **extra: Any) -> dict[str, Any]:
    return {"account": account, "ttl": "10m", "publish": {"allow": [*publish, INFO]},
            "subscribe": {"allow": ["_INBOX.>"]}, **extra}


def _settings(idp: Issuer) -> dict[str, Any]:
    jwks = {"jwks_uri": idp.url + "/jwks", "allow_http": True}
    return {"identity": {"oidc": {"issuers": [
        {"issuer": GITHUB, "provider": "github", "audiences": ["nats://prod"], **jwks},
        {"issuer": CLUSTER, "provider": "kubernetes", "audiences": ["nats"], **jwks},
        {"issuer": ENTRA, "provider": "entra", "tenants": [TENANT_B], "subject_claim": "oid",
         "audiences": ["api://nats-prod"], **jwks},
        {"issuer": idp.url, "provider": "cloudflare_access", "audiences": [AUD_TAG],
         "allow_http": True},
    ]}}}


def _rules(idp: Issuer) -> list[dict[str, Any]]:
    return [
        {"id": "gha-deploy", "match": {
            "issuer": GITHUB, "subject": "repo:acme/api:environment:prod",
            "claims": {"job_workflow_ref": {"pattern": r"^acme/api/\.github/workflows/.*"}}},
         "grant": _grant("APP", "deploy.api.>")},
        {"id": "k8s", "match": {
            "issuer": CLUSTER, "subject_glob": "system:serviceaccount:*:*",
            "claims": {"k8s_namespace": {"pattern": "^[a-z0-9-]{1,63}$"}}},
         "grant": _grant("APP", "svc.{{claims.k8s_namespace}}.>")},
        {"id": "entra-writers", "match": {
            "source": "oidc", "claims": {"tid": {"in": [TENANT_B]}},
            "subject": "0f1e2d3c-4b5a-4968-8776-655443322110"},
         "grant": _grant("APP", "orders.write")},
        {"id": "edge-worker", "match": {"issuer": idp.url, "subject": CLIENT_ID},
         "grant": _grant("EDGE", "edge.clicks", connection_types=["WEBSOCKET"])},
        {"id": "gha-any-staging", "match": {  # names no repository: warned at startup
            "issuer": GITHUB, "claims": {"environment": {"equals": "staging"}}},
         "grant": _grant("APP", "staging.status")},
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Issuer]]:
    with Issuer(keys=[KEY]) as idp:
        d = Deployment(tmp_path_factory.mktemp("providers"), websocket=True,
                       settings_extra=_settings(idp), rules=_rules(idp))
        d.start()
        try:
            yield d, idp
        finally:
            d.stop()


def mint(name: str, **changes: Any) -> str:
    return mint_claim_set(KEY, name, int(time.time()), **changes)


async def admitted(url: str, token: str) -> dict[str, Any]:
    nc = await nats.connect(url, token=token, allow_reconnect=False, connect_timeout=5)
    try:
        reply = await nc.request(INFO, b"", timeout=3)
        data: dict[str, Any] = json.loads(reply.data)["data"]
        return data
    finally:
        await nc.close()


async def refused(d: Deployment, url: str, token: str) -> str:
    before = len(d.audit())
    with pytest.raises(NatsError):
        await nats.connect(url, token=token, allow_reconnect=False, connect_timeout=5)
    records = await asyncio.to_thread(d.wait_audit, before + 1)
    return str(records[-1]["reason"])


async def test_github_environment_job_is_admitted_and_a_pull_request_is_not(
        world: tuple[Deployment, Issuer]) -> None:
    d, _ = world
    info = await admitted(d.url, mint("github-actions-environment"))
    assert info["account_name"] == "APP"
    assert "deploy.api.>" in info["permissions"]["publish"]["allow"]
    reason = await refused(d, d.url, mint("github-actions-pull-request"))
    assert reason == DenyReason.NO_MATCHING_RULE


def test_startup_warns_about_a_github_rule_without_repository(
        world: tuple[Deployment, Issuer]) -> None:
    d, _ = world
    warned = [line for line in d.service_log.read_text().splitlines()
              if "[github_unbound]" in line]
    assert len(warned) == 1 and "gha-any-staging" in warned[0]


async def test_kubernetes_namespace_is_templated_into_the_grant(
        world: tuple[Deployment, Issuer]) -> None:
    d, _ = world
    info = await admitted(d.url, mint("kubernetes-projected"))
    assert "svc.payments.>" in info["permissions"]["publish"]["allow"]
    forged = {"namespace": "billing", "serviceaccount": {"name": "api"}}
    reason = await refused(d, d.url, mint("kubernetes-projected", **{"kubernetes.io": forged}))
    assert reason == DenyReason.TOKEN_CLAIM_INVALID


async def test_entra_tenant_and_object_id(world: tuple[Deployment, Issuer]) -> None:
    d, _ = world
    info = await admitted(d.url, mint("entra-v2-access"))
    assert "orders.write" in info["permissions"]["publish"]["allow"]
    record = d.audit()[-1]
    assert record["identity"]["principal"] == \
        f"oidc:https://login.microsoftonline.com/{TENANT_B}/v2.0#0f1e2d3c-4b5a-4968-8776-655443322110"
    assert await refused(d, d.url, mint("entra-v2-overage")) == DenyReason.TOKEN_CLAIM_INVALID


async def test_worker_with_access_service_token_over_websocket(
        world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    token = mint("cloudflare-access-service-token", iss=idp.url)
    info = await admitted(f"ws://127.0.0.1:{d.websocket_port}", token)
    assert info["account_name"] == "EDGE"
    assert idp.certs_hits >= 1  # keys came from the team domain's certs path
    assert await refused(d, d.url, token) == DenyReason.CONNECTION_NOT_ALLOWED  # TCP
    org = mint("cloudflare-access-service-token", iss=idp.url, type="org")
    ws_reason = await refused(d, f"ws://127.0.0.1:{d.websocket_port}", org)
    assert ws_reason == DenyReason.TOKEN_CLAIM_INVALID
