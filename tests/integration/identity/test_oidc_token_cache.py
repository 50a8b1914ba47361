"""The verified-token cache through nats-server and ``authsvc serve``: reconnects with the same
token are each decided and audited, and a key the IdP removes stops its cached tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.domain import DenyReason
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey, mint

INFO = "$SYS.REQ.USER.INFO"
OLD, NEW = SigningKey.rsa("cache-old"), SigningKey.rsa("cache-new")
JWKS_TTL = 1.0  # seconds; short so the test sees a refresh


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Deployment, Issuer]]:
    with Issuer(keys=[OLD, NEW]) as idp:
        d = Deployment(tmp_path / "cache")
        d.settings_extra = {"identity": {"oidc": {
            "jwks": {"ttl": f"{int(JWKS_TTL)}s", "cooldown": "1s"},
            "issuers": [{"issuer": idp.url, "audiences": ["nats"], "allow_http": True,
                         "jwks_uri": idp.url + "/jwks"}]}}}
        d.rules = [{"id": "svc", "match": {"source": "oidc", "issuer": idp.url,
                                           "subject": "svc"},
                    "grant": {"account": "APP", "publish": {"allow": [INFO]},
                              "subscribe": {"allow": ["_INBOX.>"]}}}]
        d.start()
        try:
            yield d, idp
        finally:
            d.stop()


def token(idp: Issuer, key: SigningKey) -> str:
    now = int(time.time())
    return mint(key, {"iss": idp.url, "sub": "svc", "aud": "nats", "iat": now, "exp": now + 600})


async def connect(d: Deployment, sent: str) -> None:
    nc = await nats.connect(d.url, token=sent, allow_reconnect=False, connect_timeout=5)
    await nc.close()


async def test_same_token_reconnects_are_each_decided_and_audited(
        world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    sent = token(idp, OLD)
    for _ in range(3):
        await connect(d, sent)
    records = await asyncio.to_thread(d.wait_audit, 3)
    assert [r["decision"] for r in records] == ["allow"] * 3
    assert {r["identity"]["principal"] for r in records} == {f"oidc:{idp.url}#svc"}


async def test_a_key_removed_from_the_jwks_stops_its_cached_token(
        world: tuple[Deployment, Issuer]) -> None:
    d, idp = world
    old, new = token(idp, OLD), token(idp, NEW)
    await connect(d, old)
    await connect(d, new)
    idp.keys = [NEW]  # rotated: OLD is no longer published
    await asyncio.sleep(JWKS_TTL + 0.2)  # the cached JWKS goes stale and is fetched again
    with pytest.raises(NatsError):
        await connect(d, old)
    await connect(d, new)
    records = await asyncio.to_thread(d.wait_audit, 4)
    assert [r["decision"] for r in records] == ["allow", "allow", "deny", "allow"]
    assert records[2]["reason"] == DenyReason.TOKEN_KID_UNKNOWN
