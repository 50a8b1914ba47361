"""Tokens from a real OIDC provider (oidc-provider-mock, offline, in-process on loopback).

Its id_tokens are RS256 *without* a kid, its discovery names ``http://localhost:<port>``,
and it puts stored user claims (``groups``) into the id_token: the human-SSO shape.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from authsvc.domain import Deny, DenyReason, Identity
from authsvc.identity.claims import ClaimRules, ClaimType
from authsvc.identity.fetch import HttpxGetter
from authsvc.identity.jwks import RemoteKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from tests.unit.identity.test_oidc import request

oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
# The provider itself imports deprecated authlib modules; that is its business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CLIENT = "nats-client"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    from oidc_provider_mock._storage import User  # the documented way to preload claims

    users = [User(sub="alice", claims={"groups": ["ops", "dev"], "email": "alice@example"})]
    with oidc_provider_mock.run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


def id_token(base: str, sub: str = "alice") -> str:
    """Run the authorization-code flow non-interactively and return the id_token."""
    redirect = "http://localhost/cb"
    query = {"client_id": CLIENT, "redirect_uri": redirect, "response_type": "code",
             "scope": "openid email", "nonce": "n", "state": "s"}
    with httpx.Client(base_url=base) as http:
        answer = http.post("/oauth2/authorize?" + urllib.parse.urlencode(query),
                           data={"sub": sub})
        code = urllib.parse.parse_qs(
            urllib.parse.urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = http.post("/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": CLIENT, "client_secret": "unused"}).json()
    token: str = tokens["id_token"]
    return token


def verifier(issuer: str, **rules: Any) -> OidcVerifier:
    return OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=issuer, audiences=frozenset({CLIENT}), **rules),
        algorithms=frozenset({"RS256"}),
        keys=RemoteKeys(issuer=issuer, getter=HttpxGetter(), allow_http=True),
        claims={"groups": ClaimType.STRINGS, "email": ClaimType.STRING},
        mutable=frozenset({"email", "groups"}))])


async def test_provider_id_token_is_verified_by_discovery(provider: str) -> None:
    result = await verifier(provider).verify(request(id_token(provider)),
                                             now=datetime.now(UTC))
    assert isinstance(result, Identity), result
    assert result.principal == f"oidc:{provider}#alice"
    assert result.attributes["groups"] == ("ops", "dev")
    assert result.attributes["mutable_claims"] == ("email", "groups")


async def test_provider_token_for_another_audience_is_refused(provider: str) -> None:
    v = OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=provider, audiences=frozenset({"other-app"})),
        algorithms=frozenset({"RS256"}),
        keys=RemoteKeys(issuer=provider, getter=HttpxGetter(), allow_http=True))])
    result = await v.verify(request(id_token(provider)), now=datetime.now(UTC))
    assert isinstance(result, Deny) and result.reason is DenyReason.TOKEN_AUDIENCE_MISMATCH


async def test_same_provider_under_another_host_name_is_unknown(provider: str) -> None:
    # 127.0.0.1 and localhost are the same socket but not the same issuer string.
    other = provider.replace("localhost", "127.0.0.1")
    result = await verifier(other).verify(request(id_token(provider)), now=datetime.now(UTC))
    assert isinstance(result, Deny) and result.reason is DenyReason.ISSUER_UNKNOWN
