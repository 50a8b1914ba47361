"""The identity.aws_iam settings: secure defaults, refusals that name the problem, wiring."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from authsvc.settings_identity import IdentitySettings
from authsvc.verifiers import build_verifiers
from tests.support.idp import SigningKey


def settings(**aws: Any) -> IdentitySettings:
    return IdentitySettings.model_validate({"aws_iam": {"server_id": "nats-prod", **aws}})


def test_defaults() -> None:
    aws = settings().aws_iam
    assert aws is not None
    assert aws.max_age.total_seconds() == 900 and aws.clock_skew.total_seconds() == 60
    assert aws.server_id_header == "X-Authsvc-Server-Id" and not aws.require_nonce
    assert not aws.session_name and not aws.allow_http and aws.regions == []
    assert not aws.federated_users
    assert IdentitySettings().aws_iam is None


@pytest.mark.parametrize(("change", "words"), [
    ({"server_id": ""}, "server_id"),
    ({"server_id": "a b"}, "server_id"),
    ({"max_age": "16m"}, "max_age"),
    ({"max_age": "0s"}, "max_age"),
    ({"clock_skew": "10m"}, "clock_skew"),
    ({"server_id_header": "Host"}, "server_id_header"),
    ({"nonce_header": "X-Authsvc-Server-Id"}, "differ"),
    ({"server_id_header": "X-Amz-Server"}, "x-amz"),
    ({"endpoints": {"sts.evil.example": "https://sts.evil.example/"}}, "not an STS host"),
    ({"endpoints": {"sts.amazonaws.com": "http://127.0.0.1:5000/"}}, "https"),
    ({"regions": ["eu-west-1", "mars-1"]}, "mars-1"),
    ({"regions": ["eu-west-\uff11"]}, "not AWS region names"),
    ({"endpoints": {"sts.eu-west-\uff11.amazonaws.com": "https://x.example/"}},
     "not an STS host"),
])
def test_unsafe_settings_are_refused(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**change)
    assert words in str(caught.value)


def test_aws_tokens_are_routed_before_jwts() -> None:
    both = IdentitySettings.model_validate({
        "aws_iam": {"server_id": "nats-prod"},
        "oidc": {"issuers": [{"issuer": "https://idp", "audiences": ["a"],
                              "keys": [SigningKey.rsa("k").jwk()]}]}})
    assert build_verifiers(both).sources == ("aws_iam", "oidc", "nkey")
    assert build_verifiers(settings()).sources == ("aws_iam", "nkey")
    assert build_verifiers(settings(endpoints={"sts.amazonaws.com": "http://127.0.0.1:1/"},
                                    allow_http=True)).sources == ("aws_iam", "nkey")


@pytest.mark.parametrize(("regions", "warned"), [([], True), (["eu-west-1"], False)])
def test_empty_regions_are_warned_about_at_startup(
        caplog: pytest.LogCaptureFixture, regions: list[str], warned: bool) -> None:
    with caplog.at_level("WARNING", logger="authsvc.verifiers"):
        build_verifiers(settings(regions=regions))
    assert any(r.name == "authsvc.verifiers" for r in caplog.records) is warned
