"""``authsvc.clients.oidc``: client-credentials tokens from the loopback issuer's token endpoint.

The issuer (``tests.support.idp``) is a real HTTP token endpoint on 127.0.0.1 that checks the
client secret and mints ``at+jwt`` access tokens; the last test connects through a real
nats-server and ``authsvc serve`` with the helper's token callable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import nats
import pytest

from authsvc.clients.oidc import ClientCredentialsToken, TokenFetchError, TokenUnavailable
from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    Secret,
    ServerInfo,
)
from authsvc.settings_identity import OidcSettings
from authsvc.verifiers import build_oidc
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey

KEY = SigningKey.ec("cc-1")
SECRET = "s3cret-do-not-log"  # a test client's secret


@pytest.fixture
def idp() -> Iterator[Issuer]:
    with Issuer(keys=[KEY], clients={"orders": SECRET}) as issuer:
        yield issuer


def helper(idp: Issuer, **options: object) -> ClientCredentialsToken:
    settings: dict[str, object] = {"client_id": "orders", "client_secret": SECRET,
                                   "scope": "nats", **options}
    return ClientCredentialsToken(token_endpoint=idp.url + "/token", **settings)  # type: ignore[arg-type]


async def test_token_is_fetched_once_and_accepted_by_the_verifier(idp: Issuer) -> None:
    async with helper(idp) as auth:
        first = auth.token()
        assert auth.token() == first and await auth.get() == first
        assert idp.token_hits == 1
        assert idp.token_forms[-1]["scope"] == "nats"
    verifier = build_oidc(OidcSettings.model_validate({"issuers": [{
        "issuer": idp.url, "audiences": ["nats"], "typ": ["at+jwt"], "allow_http": True,
        "keys": [KEY.jwk()]}]}))
    now = datetime.now(UTC)
    request = ConnectRequest(server=ServerInfo(id="N"), user_nkey="U", client=ClientInfo(),
                             connect=ConnectOptions(auth_token=Secret(first)), request_id="r",
                             issued_at=now, expires_at=now)
    found = await verifier.verify(request, now=now)
    assert isinstance(found, Identity) and found.principal == f"oidc:{idp.url}#orders"


async def test_concurrent_refreshes_share_one_request(idp: Issuer) -> None:
    async with helper(idp) as auth:
        tokens = await asyncio.gather(*(auth.refresh() for _ in range(10)))
        assert len(set(tokens)) == 1
        assert idp.token_hits == 2  # start + one shared refresh


async def test_token_is_replaced_before_it_expires(idp: Issuer) -> None:
    idp.token_lifetime = 1  # refreshed a third of its life before expiry
    async with helper(idp) as auth:
        first = auth.token()
        deadline = time.monotonic() + 3
        while idp.token_hits < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert idp.token_hits >= 2 and auth.token() != first


async def test_no_expired_token_and_a_failed_refresh_keeps_the_good_one(idp: Issuer) -> None:
    clock = [1000.0]
    auth = helper(idp, monotonic=lambda: clock[0], default_lifetime=60)
    try:
        good = await auth.refresh()
        idp.down = True
        with pytest.raises(TokenFetchError):
            await auth.refresh()
        assert auth.token() == good
        clock[0] += 301  # past expires_in
        with pytest.raises(TokenUnavailable):
            auth.token()
    finally:
        await auth.aclose()


async def test_refused_client_never_shows_its_secret(idp: Issuer) -> None:
    auth = helper(idp, client_secret="wrong-" + SECRET)
    try:
        with pytest.raises(TokenFetchError) as caught:
            await auth.start()
        assert SECRET not in str(caught.value) + repr(auth)
        with pytest.raises(TokenUnavailable):
            auth.token()
    finally:
        await auth.aclose()


async def test_form_authentication_and_audience(idp: Issuer) -> None:
    auth = helper(idp, auth_method="client_secret_post", audience="https://nats.example")
    try:
        await auth.refresh()
    finally:
        await auth.aclose()
    form = idp.token_forms[-1]
    assert (form["client_id"], form["audience"]) == ("orders", "https://nats.example")


async def test_service_connects_through_nats_with_the_helper(
        idp: Issuer, tmp_path_factory: pytest.TempPathFactory) -> None:
    info_subject = "$SYS.REQ.USER.INFO"
    d = Deployment(tmp_path_factory.mktemp("oidc-client"), settings_extra={"identity": {
        "oidc": {"issuers": [{"issuer": idp.url, "audiences": ["nats"], "typ": ["at+jwt"],
                              "allow_http": True}]}}},
        rules=[{"id": "orders", "match": {"issuer": idp.url, "subject": "orders"},
                "grant": {"account": "APP", "publish": {"allow": [info_subject]},
                          "subscribe": {"allow": ["_INBOX.>"]}}}])
    d.start()
    try:
        async with helper(idp) as auth:
            nc = await nats.connect(d.url, allow_reconnect=False, connect_timeout=5,
                                    **auth.connect_options())
            reply = await nc.request(info_subject, b"", timeout=3)
            await nc.close()
        assert json.loads(reply.data)["data"]["account_name"] == "APP"
    finally:
        d.stop()


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b"[1, 2]", b"[" * 5000,
                                  b'{"token_type": "Bearer"}'])
async def test_an_answer_that_is_not_a_token_response_is_a_fetch_error(
        idp: Issuer, body: bytes) -> None:
    clock = [1000.0]
    auth = helper(idp, monotonic=lambda: clock[0])
    try:
        good = await auth.refresh()
        idp.token_raw = body
        with pytest.raises(TokenFetchError):
            await auth.refresh()
        assert auth.token() == good  # the good token stays; the refresh loop would retry
    finally:
        await auth.aclose()
    fresh = helper(idp)
    try:
        with pytest.raises(TokenFetchError):
            await fresh.start()
    finally:
        await fresh.aclose()


async def test_the_refresh_loop_survives_a_bad_answer(idp: Issuer) -> None:
    idp.token_lifetime = 1
    async with helper(idp) as auth:
        idp.token_raw = b"not json"
        hits = idp.token_hits
        deadline = time.monotonic() + 5
        while idp.token_hits < hits + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert idp.token_hits >= hits + 2  # failed, backed off, asked again
        idp.token_raw = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                auth.token()
                break
            except TokenUnavailable:
                await asyncio.sleep(0.05)
        assert auth.token()


async def test_a_silent_token_endpoint_fails_within_the_timeout(idp: Issuer) -> None:
    idp.token_delay = 2.0
    auth = helper(idp, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(TokenFetchError):
            await auth.start()
    finally:
        await auth.aclose()
    assert time.monotonic() - started < 1.5
