"""The identity settings section: secure defaults, refusals that name the problem, wiring."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from authsvc.domain import Identity
from authsvc.settings_identity import IdentitySettings
from authsvc.verifiers import build_oidc, build_verifiers
from tests.support.idp import SigningKey, mint
from tests.unit.identity.test_oidc import ISS, NOW, T, request


def settings(**issuer: Any) -> IdentitySettings:
    block = {"issuer": "https://idp.example.com", "audiences": ["nats"], **issuer}
    return IdentitySettings.model_validate({"oidc": {"issuers": [block]}})


def test_defaults_are_strict() -> None:
    item = settings().oidc.issuers[0]
    assert "HS256" not in item.algorithms and "none" not in item.algorithms
    assert item.leeway.total_seconds() == 60
    assert item.max_lifetime is not None and item.allow_http is False
    assert IdentitySettings().oidc.max_token_bytes == 8192


@pytest.mark.parametrize(("change", "words"), [
    ({"audiences": []}, "audiences is empty"),
    ({"algorithms": ["RS256", "HS256"]}, "HS256"),
    ({"algorithms": ["none"]}, "none"),
    ({"issuer": "http://idp.example.com"}, "https"),
    ({"jwks_uri": "http://idp.example.com/jwks"}, "https"),
    ({"jwks_uri": "https://idp/jwks", "keys": []}, "not both"),
    ({"leeway": "10m"}, "leeway"),
])
def test_unsafe_issuer_settings_are_refused(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**change)
    assert words in str(caught.value)


def test_duplicate_issuers_are_refused() -> None:
    block = {"issuer": "https://idp", "audiences": ["a"]}
    with pytest.raises(ValidationError):
        IdentitySettings.model_validate({"oidc": {"issuers": [block, block]}})


def test_registry_tries_tokens_then_nkey() -> None:
    registry = build_verifiers(settings(keys=[SigningKey.rsa("k").jwk()]))
    assert registry.sources == ("oidc", "nkey")
    assert build_verifiers(IdentitySettings()).sources == ("nkey",)


@pytest.mark.parametrize(("size", "cached"), [(None, 1), (0, 0)])
async def test_token_cache_size_reaches_the_verifier(size: int | None, cached: int) -> None:
    key = SigningKey.rsa("k")
    oidc = {"issuers": [{"issuer": ISS, "audiences": ["nats"], "keys": [key.jwk()]}]}
    if size is not None:
        oidc["token_cache_size"] = size
    loaded = IdentitySettings.model_validate({"oidc": oidc})
    assert loaded.oidc.token_cache_size == (10_000 if size is None else size)
    verifier = build_oidc(loaded.oidc)
    sent = mint(key, {"iss": ISS, "sub": "s", "aud": "nats", "iat": T, "exp": T + 60})
    assert isinstance(await verifier.verify(request(sent), now=NOW), Identity)
    assert verifier.cached_tokens == cached


def test_negative_token_cache_size_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        IdentitySettings.model_validate({"oidc": {"token_cache_size": -1}})
    assert caught.value.errors()[0]["loc"] == ("oidc", "token_cache_size")


@pytest.mark.parametrize("value", ["-60", "0", "0s"])
def test_a_max_lifetime_that_is_not_positive_is_refused(value: str) -> None:
    # null is "no cap"; a zero or negative one refused every token, or read as no cap.
    with pytest.raises(ValidationError) as caught:
        settings(max_lifetime=value)
    assert [error["loc"][:4] for error in caught.value.errors()] == [
        ("oidc", "issuers", 0, "max_lifetime")]
    assert settings(max_lifetime=None).oidc.issuers[0].max_lifetime is None


def test_bad_algorithms_are_reported_with_the_issuers_other_bad_fields() -> None:
    # They used to wait until every other field was fixed (a whole-block check).
    with pytest.raises(ValidationError) as caught:
        settings(algorithms=["RS256", "HS256"], leeway="10m")
    assert sorted(error["loc"][3] for error in caught.value.errors()) == ["algorithms",
                                                                          "leeway"]
