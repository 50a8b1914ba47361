"""An OIDC issuer's key cache as /metrics shows it, from a real ``authsvc serve`` whose
issuer is found by discovery on a loopback IdP."""

from __future__ import annotations

import time
from pathlib import Path

import nats
from nats.errors import Error as NatsError

from authsvc.natsconf.process import free_port
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey, mint
from tests.support.scrape import scrape

KEY = SigningKey.rsa("metrics-1")


def _token(idp: Issuer, sub: str) -> str:
    now = int(time.time())
    return mint(KEY, {"iss": idp.url, "sub": sub, "aud": "nats", "iat": now, "exp": now + 600})


async def _admitted(d: Deployment, token: str) -> bool:
    try:
        nc = await nats.connect(d.url, token=token, allow_reconnect=False, connect_timeout=5)
    except NatsError:
        return False
    admitted = bool(nc.is_connected)
    await nc.close()
    return admitted


async def test_the_issuer_key_cache_shows_in_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    with Issuer(keys=[KEY]) as idp:
        d = Deployment(tmp_path)
        d.settings_extra = {
            "identity": {"oidc": {"issuers": [
                {"issuer": idp.url, "audiences": ["nats"], "allow_http": True}]}},
            "metrics": {"listen": f"127.0.0.1:{port}"}}
        d.rules = [{"id": "svc", "match": {"source": "oidc", "issuer": idp.url,
                                           "subject": "svc"},
                    "grant": {"account": "APP", "publish": {"allow": ["a.b"]}}}]
        d.start()
        try:
            before = scrape(port)
            issuer = (("issuer", idp.url),)
            assert before[("authsvc_jwks_fetches_total", (*issuer, ("outcome", "ok")))] == 0
            assert ("authsvc_jwks_age_seconds", issuer) not in before  # never fetched yet
            assert await _admitted(d, _token(idp, "svc"))
            assert await _admitted(d, _token(idp, "svc"))
            after = scrape(port)
        finally:
            d.stop()
    assert after[("authsvc_jwks_fetches_total", (*issuer, ("outcome", "ok")))] == 1
    assert after[("authsvc_jwks_fetches_total", (*issuer, ("outcome", "failed")))] == 0
    assert after[("authsvc_jwks_keys", issuer)] == 1
    assert after[("authsvc_jwks_stale", issuer)] == 0
    assert 0 <= after[("authsvc_jwks_age_seconds", issuer)] < 60
    assert idp.discovery_hits == 1 and idp.hits == 1


