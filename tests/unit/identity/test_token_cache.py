"""The verified-token cache: what a hit may skip, and everything that stops a hit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authsvc.domain import Deny, DenyReason, Identity, IdentitySource
from authsvc.identity import jws
from authsvc.identity.claims import ClaimRules
from authsvc.identity.jwk import VerificationKey, import_key_set
from authsvc.identity.jwks import StaticKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from authsvc.identity.token_cache import VerifiedToken, VerifiedTokenCache, token_digest
from tests.support.idp import SigningKey, mint
from tests.unit.identity.test_oidc import EC, GOOD, ISS, RSA, T, request

LEEWAY = 60


class SwappableKeys:
    """A key source whose key set the test replaces, as a JWKS refresh would."""

    def __init__(self, *keys: SigningKey) -> None:
        self.publish(*keys)
        self.lookups = 0

    def publish(self, *keys: SigningKey) -> None:
        self.keys = import_key_set([key.jwk() for key in keys])

    async def lookup(self, kid: str | None) -> tuple[VerificationKey, ...] | Deny:
        self.lookups += 1
        return self.keys.candidates(kid) or Deny(DenyReason.TOKEN_KID_UNKNOWN, "gone")


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every signature check the verifier makes (a hit makes none)."""
    checked: list[str] = []
    real = jws.signature_valid

    def counting(token: jws.ParsedToken, key: jws.PublicKey) -> bool:
        checked.append(token.alg)
        return real(token, key)

    monkeypatch.setattr(jws, "signature_valid", counting)
    return checked


def make(keys: Any = None, cache_size: int = 10_000) -> OidcVerifier:
    return OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=ISS, audiences=frozenset({"nats"}),
                         leeway=timedelta(seconds=LEEWAY)),
        algorithms=frozenset({"RS256", "ES256"}),
        keys=keys or StaticKeys(import_key_set([RSA.jwk(), EC.jwk()])))],
        cache_size=cache_size)


async def verify(verifier: OidcVerifier, token: str, at: int = T) -> Identity | Deny | None:
    return await verifier.verify(request(token), now=datetime.fromtimestamp(at, tz=UTC))


def token(key: SigningKey = RSA, **changes: Any) -> str:
    return mint(key, {**GOOD, **changes})


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
async def test_a_repeated_token_is_served_without_a_signature_check(
        key: SigningKey, signatures: list[str]) -> None:
    verifier, sent = make(), token(key)
    first = await verify(verifier, sent)
    second = await verify(verifier, sent, at=T + 100)
    assert isinstance(first, Identity) and second == first
    assert signatures == [key.alg]
    assert verifier.cached_tokens == 1


async def test_a_token_differing_in_one_byte_is_verified_in_full(
        signatures: list[str]) -> None:
    verifier, sent = make(), token()
    assert isinstance(await verify(verifier, sent), Identity)
    tampered = sent[:-2] + ("A" if sent[-2] != "A" else "B") + sent[-1]
    refused = await verify(verifier, tampered)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_SIGNATURE_INVALID
    assert len(signatures) == 2


async def test_no_hit_at_exp_leeway_applies_only_in_full_verification(
        signatures: list[str]) -> None:
    exp = GOOD["exp"]
    verifier, sent = make(), token()
    assert isinstance(await verify(verifier, sent), Identity)
    assert isinstance(await verify(verifier, sent, at=exp - 1), Identity)
    assert len(signatures) == 1
    # At exp the entry is gone; the full path admits the token within the leeway...
    assert isinstance(await verify(verifier, sent, at=exp + 1), Identity)
    assert len(signatures) == 2
    assert verifier.cached_tokens == 0  # ...but a token past exp is never stored
    refused = await verify(verifier, sent, at=exp + LEEWAY)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_EXPIRED


async def test_nbf_is_checked_again_on_a_hit(signatures: list[str]) -> None:
    # The clock stepping back before nbf - leeway must not be covered by the cache.
    verifier, sent = make(), token(nbf=T - 10)
    assert isinstance(await verify(verifier, sent), Identity)
    refused = await verify(verifier, sent, at=T - 10 - LEEWAY - 1)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_NOT_YET_VALID
    assert len(signatures) == 2


async def test_a_key_removed_from_the_key_set_stops_its_cached_tokens(
        signatures: list[str]) -> None:
    keys = SwappableKeys(RSA, EC)
    verifier, sent = make(keys), token(RSA)
    assert isinstance(await verify(verifier, sent), Identity)
    keys.publish(EC)  # the IdP rotated RSA out
    refused = await verify(verifier, sent)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_KID_UNKNOWN
    assert verifier.cached_tokens == 0
    assert len(signatures) == 1


async def test_another_key_under_the_same_kid_stops_cached_tokens(
        signatures: list[str]) -> None:
    keys = SwappableKeys(RSA)
    verifier, sent = make(keys), token(RSA)
    assert isinstance(await verify(verifier, sent), Identity)
    impostor = SigningKey.rsa("other-under-rsa-1")
    keys.keys = import_key_set([{**impostor.jwk(), "kid": RSA.kid}])
    refused = await verify(verifier, sent)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_SIGNATURE_INVALID
    assert len(signatures) == 2


async def test_every_hit_asks_the_key_source(signatures: list[str]) -> None:
    keys = SwappableKeys(RSA)
    verifier, sent = make(keys), token(RSA)
    for _ in range(3):
        assert isinstance(await verify(verifier, sent), Identity)
    assert (keys.lookups, len(signatures)) == (3, 1)


async def test_the_cache_is_bounded_least_recently_used_first(signatures: list[str]) -> None:
    verifier = make(cache_size=2)
    first, second, third = (token(jti=f"j-{i}") for i in range(3))
    for sent in (first, second, first, third):  # second is now the least recently used
        assert isinstance(await verify(verifier, sent), Identity)
    assert verifier.cached_tokens == 2
    assert len(signatures) == 3
    await verify(verifier, first)
    assert len(signatures) == 3  # still cached
    await verify(verifier, second)
    assert len(signatures) == 4  # evicted, verified again


async def test_size_zero_disables_the_cache(signatures: list[str]) -> None:
    verifier, sent = make(cache_size=0), token()
    for _ in range(3):
        assert isinstance(await verify(verifier, sent), Identity)
    assert len(signatures) == 3
    assert verifier.cached_tokens == 0


async def test_refusals_are_never_cached(signatures: list[str]) -> None:
    verifier = make()
    for sent in (token(aud="other"), token(exp=T - LEEWAY - 1, iat=T - 600)):
        assert isinstance(await verify(verifier, sent), Deny)
        assert isinstance(await verify(verifier, sent), Deny)
    assert verifier.cached_tokens == 0
    assert len(signatures) == 4


def _entry(expires: float = T + 300, not_before: float | None = None) -> VerifiedToken:
    identity = Identity(source=IdentitySource.OIDC, principal="oidc:x#y", subject="y")
    return VerifiedToken(identity=identity, issuer=ISS, kid="k", alg="RS256",
                         key_fingerprint=b"f", expires=expires, not_before=not_before,
                         leeway=LEEWAY)


def test_entries_are_keyed_by_digest_and_hold_no_token() -> None:
    cache, sent = VerifiedTokenCache(10), token()
    digest = token_digest(sent)
    assert len(digest) == 32
    cache.put(digest, _entry(), T)
    assert cache.get(digest, T) is not None
    assert sent not in repr(cache.get(digest, T))


def test_cache_get_drops_an_entry_at_its_exp() -> None:
    cache = VerifiedTokenCache(10)
    cache.put(b"d", _entry(expires=T + 10), T)
    assert cache.get(b"d", T + 9) is not None
    assert cache.get(b"d", T + 10) is None
    assert len(cache) == 0


def test_cache_put_skips_entries_not_current() -> None:
    cache = VerifiedTokenCache(10)
    cache.put(b"late", _entry(expires=T), T)
    cache.put(b"early", _entry(not_before=T + LEEWAY + 1), T)
    assert len(cache) == 0


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        VerifiedTokenCache(-1)
