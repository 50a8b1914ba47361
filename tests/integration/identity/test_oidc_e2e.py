"""OIDC clients through a real nats-server and ``authsvc serve``, over TCP and WebSocket."""

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
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey, mint

INFO = "$SYS.REQ.USER.INFO"
# nats-py's WebSocket transport passes aiohttp a float timeout that aiohttp deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:parameter 'timeout':DeprecationWarning")
KEY = SigningKey.ec("e2e-1")


@pytest.fixture(scope="module", params=["config", "operator"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Issuer]]:
    with Issuer(keys=[KEY]) as idp:
        d = Deployment(tmp_path_factory.mktemp(f"oidc-{request.param}"), mode=request.param,
                       websocket=True)
        d.settings_extra = {"identity": {"oidc": {"issuers": [{
            "issuer": idp.url, "audiences": ["nats"], "allow_http": True,
            "claims": {"groups": "strings", "repository": "string"}}]}}}
        d.rules = [
            {"id": "ci-deployer", "match": {"source": "oidc", "issuer": idp.url,
                                            "subject": "repo:acme/app:ref:refs/heads/main"},
             "grant": {"account": "APP", "ttl": "10m",
                       "publish": {"allow": ["deploy.>", INFO]},
                       "subscribe": {"allow": ["_INBOX.>"]}}},
            {"id": "worker", "match": {"source": "oidc", "issuer": idp.url,
                                       "subject": "worker-1"},
             "grant": {"account": "OPS", "publish": {"allow": [INFO]},
                       "subscribe": {"allow": ["_INBOX.>"]}}},
        ]
        d.start()
        try:
            yield d, idp
        finally:
            d.stop()


def token(idp: Issuer, sub: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": idp.url, "sub": sub, "aud": "nats", "iat": now, "exp": now + 600,
              "groups": ["deployers"], "repository": "acme/app", **changes}
    return mint(KEY, claims)


async def user_info(nc: Any) -> dict[str, Any]:
    try:
        reply = await nc.request(INFO, b"", timeout=3)
        data: dict[str, Any] = json.loads(reply.data)["data"]
        return data
    finally:
        await nc.close()


async def record_for(d: Deployment, count: int) -> dict[str, Any]:
    records = await asyncio.to_thread(d.wait_audit, count)
    return records[-1]


@pytest.mark.parametrize("field", ["token", "password"])
async def test_oidc_client_lands_in_its_granted_account(
        world: tuple[Deployment, Issuer], field: str) -> None:
    d, idp = world
    sent = token(idp, "repo:acme/app:ref:refs/heads/main")
    credentials = {"token": sent} if field == "token" else {"user": "oidc", "password": sent}
    before = len(d.audit())
    nc = await nats.connect(d.url, allow_reconnect=False, connect_timeout=5, **credentials)
    info = await user_info(nc)
    assert info["account_name"] == "APP"
    assert "deploy.>" in info["permissions"]["publish"]["allow"]
    record = await record_for(d, before + 1)
    assert record["decision"] == "allow"
    assert record["identity"]["principal"] == \
        f"oidc:{idp.url}#repo:acme/app:ref:refs/heads/main"
    assert sent not in json.dumps(record)  # the token itself is never recorded


async def test_user_jwt_never_outlives_the_token(world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    exp = int(time.time()) + 90
    nc = await nats.connect(d.url, token=token(idp, "worker-1", exp=exp),
                            allow_reconnect=False, connect_timeout=5)
    info = await user_info(nc)
    assert info["account_name"] == "OPS"
    assert 0 < info["expires"] <= 91 * 1_000_000_000  # nanoseconds left, capped at exp


async def test_websocket_client_with_oidc_token(world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    nc = await nats.connect(f"ws://127.0.0.1:{d.websocket_port}",
                            token=token(idp, "repo:acme/app:ref:refs/heads/main"),
                            allow_reconnect=False, connect_timeout=5)
    info = await user_info(nc)
    assert info["account_name"] == "APP"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"aud": "kubernetes"}, DenyReason.TOKEN_AUDIENCE_MISMATCH),
    ({"exp": 1_000_000_000, "iat": 999_999_000}, DenyReason.TOKEN_EXPIRED),
    ({"sub": "someone-else"}, DenyReason.NO_MATCHING_RULE),
])
async def test_refused_tokens_carry_their_reason(world: tuple[Deployment, Issuer],
                                                 changes: dict[str, Any],
                                                 reason: DenyReason) -> None:
    d, idp = world
    before = len(d.audit())
    with pytest.raises(NatsError):
        await nats.connect(d.url, token=token(idp, **{"sub": "worker-1", **changes}),
                           allow_reconnect=False, connect_timeout=5)
    record = await record_for(d, before + 1)
    assert record["reason"] == reason


async def test_unknown_issuer_is_refused_without_a_fetch(
        world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    hits = idp.hits + idp.discovery_hits
    before = len(d.audit())
    with pytest.raises(NatsError):
        await nats.connect(d.url, token=token(idp, "worker-1", iss=idp.url + ".evil"),
                           allow_reconnect=False, connect_timeout=5)
    record = await record_for(d, before + 1)
    assert record["reason"] == DenyReason.ISSUER_UNKNOWN
    assert idp.hits + idp.discovery_hits == hits
