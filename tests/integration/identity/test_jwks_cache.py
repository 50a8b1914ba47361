"""The remote JWKS cache against a real issuer on loopback: storms, rotation, outages, caps."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from authsvc.domain import Deny, DenyReason, Identity
from authsvc.errors import UpstreamError
from authsvc.identity.claims import ClaimRules
from authsvc.identity.fetch import HttpxGetter
from authsvc.identity.jwks import CachePolicy, RemoteKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from tests.support.idp import Issuer, SigningKey, mint
from tests.unit.identity.test_oidc import request

KEY = SigningKey.rsa("k1")


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def idp() -> Iterator[Issuer]:
    with Issuer(keys=[KEY]) as issuer:
        yield issuer


def claims(iss: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": iss, "sub": "svc", "aud": "nats", "iat": now, "exp": now + 300}


def verifier(idp: Issuer, ticker: Ticker | None = None, *, discovery: bool = True,
             timeout: float = 1.0, **policy: Any) -> tuple[OidcVerifier, RemoteKeys]:
    keys = RemoteKeys(issuer=idp.url, getter=HttpxGetter(timeout=timeout),
                      jwks_uri=None if discovery else idp.url + "/jwks",
                      policy=CachePolicy(**policy), allow_http=True,
                      monotonic=ticker or time.monotonic)
    issuer = OidcIssuer(rules=ClaimRules(issuer=idp.url, audiences=frozenset({"nats"})),
                        algorithms=frozenset({"RS256", "ES256"}), keys=keys)
    return OidcVerifier([issuer]), keys


async def check(v: OidcVerifier, token: str) -> Identity | Deny | None:
    return await v.verify(request(token), now=datetime.now(UTC))


async def test_discovery_then_cached_keys(idp: Issuer) -> None:
    v, keys = verifier(idp)
    results = await asyncio.gather(*(check(v, mint(KEY, claims(idp.url))) for _ in range(50)))
    assert all(isinstance(r, Identity) for r in results)
    assert (idp.discovery_hits, idp.hits, keys.fetches) == (1, 1, 1)  # single flight


async def test_unknown_kid_storm_costs_one_fetch_per_cooldown(idp: Issuer) -> None:
    ticker = Ticker()
    v, _ = verifier(idp, ticker, discovery=False, cooldown=30)
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    ticker.t += 31  # cooldown over: the first bogus kid may refetch once
    bogus = SigningKey.rsa("bogus")
    storm = [mint(replace(bogus, kid=f"bogus-{uuid.uuid4()}"), claims(idp.url))
             for _ in range(200)]
    started = time.perf_counter()
    results = await asyncio.gather(*(check(v, t) for t in storm))
    elapsed = time.perf_counter() - started
    assert {r.reason for r in results if isinstance(r, Deny)} == {DenyReason.TOKEN_KID_UNKNOWN}
    assert len(results) == 200
    assert idp.hits == 2, idp.hits
    assert elapsed < 1.0


async def test_rotation_is_picked_up_without_restart(idp: Issuer) -> None:
    ticker = Ticker()
    v, _ = verifier(idp, ticker, discovery=False, cooldown=30)
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    rotated = SigningKey.ec("k2")
    idp.keys = [rotated, KEY]
    ticker.t += 30
    assert isinstance(await check(v, mint(rotated, claims(idp.url))), Identity)
    assert idp.hits == 2


async def test_idp_down_cached_keys_verify_unknown_kids_deny_fast(idp: Issuer) -> None:
    ticker = Ticker()
    v, _ = verifier(idp, ticker, discovery=False, ttl=60, cooldown=30)
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    idp.stop()
    ticker.t += 3600  # past the TTL, inside stale_for: last good keys still serve
    started = time.perf_counter()
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    for _ in range(20):
        refused = await check(v, mint(SigningKey.rsa("new"), claims(idp.url)))
        assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_KID_UNKNOWN
    assert time.perf_counter() - started < 0.5


async def test_no_keys_and_idp_down_is_a_fault(idp: Issuer) -> None:
    idp.down = True
    v, _ = verifier(idp, discovery=False)
    with pytest.raises(UpstreamError):
        await check(v, mint(KEY, claims(idp.url)))


async def test_stale_keys_expire_after_stale_for(idp: Issuer) -> None:
    ticker = Ticker()
    v, _ = verifier(idp, ticker, discovery=False, ttl=60, stale_for=100)
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    idp.down = True
    ticker.t += 159  # refresh fails; the last good keys serve until fetched + ttl + stale_for
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    # Past stale_for the keys are gone for good: every connect is a fault, also inside the
    # refetch cooldown and the retry pause that follow the failed refresh.
    for step in (2, 1, 5, 10, 30, 0.5):
        ticker.t += step
        with pytest.raises(UpstreamError):
            await check(v, mint(KEY, claims(idp.url)))
    idp.down = False
    ticker.t += 1
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)


@pytest.mark.parametrize(("header", "refetch_after"), [
    ("max-age=120", 120), ("public, max-age=5", 60), ("no-store", 60), (None, 600),
    ("max-age=999999", 86400)])
async def test_ttl_honours_cache_control(idp: Issuer, header: str | None,
                                         refetch_after: int) -> None:
    idp.cache_control = header
    ticker = Ticker()
    v, _ = verifier(idp, ticker, discovery=False, cooldown=0)
    token = mint(KEY, claims(idp.url))
    await check(v, token)
    ticker.t += refetch_after - 1
    await check(v, token)
    assert idp.hits == 1
    ticker.t += 1
    await check(v, token)
    assert idp.hits == 2


async def test_oversized_jwks_is_refused(idp: Issuer) -> None:
    idp.keys = [SigningKey.rsa(f"k{i}") for i in range(3)] * 60  # > 64 KiB, > 100 keys
    v, _ = verifier(idp, discovery=False)
    with pytest.raises(UpstreamError):
        await check(v, mint(KEY, claims(idp.url)))


async def test_slow_idp_times_out_inside_the_callout_budget(idp: Issuer) -> None:
    idp.delay = 3.0
    v, _ = verifier(idp, discovery=False, timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(UpstreamError):
        await check(v, mint(KEY, claims(idp.url)))
    assert time.perf_counter() - started < 1.0


async def test_discovery_naming_another_issuer_is_refused() -> None:
    with Issuer(keys=[KEY]) as idp:
        keys = RemoteKeys(issuer=idp.url + "/tenant", getter=HttpxGetter(), allow_http=True)
        with pytest.raises(UpstreamError):
            await keys.lookup("k1")


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"keys": ' * 3000, b"not json"])
async def test_a_body_that_is_not_a_json_document_is_an_idp_fault(body: bytes) -> None:
    # Nested past the parser's stack, or not JSON at all: an IdP fault (UpstreamError, so
    # stale keys keep serving), never an unexpected exception on the connect path.
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        getter = HttpxGetter()
        with pytest.raises(UpstreamError):
            await getter.get_json(f"http://127.0.0.1:{server.server_address[1]}/jwks")
    finally:
        server.shutdown()
        server.server_close()


async def test_an_outage_shows_in_the_cache_stats_and_the_log(
        idp: Issuer, caplog: pytest.LogCaptureFixture) -> None:
    """What an operator alerts on: an IdP whose JWKS cannot be refreshed while the last good
    keys still serve is ``stale`` with a failure counted and one warning per attempt; at
    ``stale_for`` the keys are gone; the next success clears it and says so."""
    ticker = Ticker()
    v, keys = verifier(idp, ticker, discovery=False, ttl=60, cooldown=30, stale_for=100)
    assert keys.stats().age is None
    assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    fresh = keys.stats()
    assert (fresh.fetched, fresh.failed, fresh.keys, fresh.age, fresh.stale) == (1, 0, 1, 0, False)
    idp.down = True
    ticker.t += 61  # past the TTL: the next connect refreshes, fails, and serves stale keys
    with caplog.at_level("WARNING", logger="authsvc.identity.jwks"):
        for _ in range(5):  # inside the cooldown: one attempt, one warning
            assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    stale = keys.stats()
    assert (stale.fetched, stale.failed, stale.keys, stale.age, stale.stale) == (1, 1, 1, 61, True)
    assert len([r for r in caplog.records if r.name == "authsvc.identity.jwks"]) == 1
    ticker.t += 100  # past fetched + ttl + stale_for: the keys are dropped
    with pytest.raises(UpstreamError):
        await check(v, mint(KEY, claims(idp.url)))
    gone = keys.stats()
    assert (gone.failed, gone.keys, gone.stale) == (2, 0, False)
    assert v.key_caches() == [gone]
    idp.down = False
    ticker.t += 1
    with caplog.at_level("INFO", logger="authsvc.identity.jwks"):
        assert isinstance(await check(v, mint(KEY, claims(idp.url))), Identity)
    back = keys.stats()
    assert (back.fetched, back.failed, back.keys, back.stale) == (2, 2, 1, False)
    assert caplog.records[-1].levelname == "INFO"
