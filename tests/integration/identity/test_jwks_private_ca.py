"""An issuer whose discovery and JWKS are served over HTTPS under a private CA (as a
self-hosted Kubernetes API server's are): trusted with the issuer's ``ca_file``, refused
(an IdP fault, no keys) without it. Real TLS on loopback (tests/support/pki.py)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from authsvc.domain import Identity
from authsvc.errors import ConfigError, UpstreamError
from authsvc.settings_identity import OidcSettings
from authsvc.verifiers import build_oidc
from tests.support.idp import Issuer, SigningKey, mint
from tests.support.pki import Pki
from tests.unit.identity.test_oidc import request

KEY = SigningKey.rsa("k8s-1")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki", name="cluster CA")


@pytest.fixture
def idp(pki: Pki) -> Iterator[Issuer]:
    server = pki.server("apiserver")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(server.cert_file), str(server.key_file))
    with Issuer(keys=[KEY], tls=context) as issuer:
        yield issuer


def verifier(idp: Issuer, **issuer: Any) -> Any:
    return build_oidc(OidcSettings.model_validate({"issuers": [{
        "issuer": idp.url, "audiences": ["nats"], **issuer}]}))


def token(idp: Issuer) -> str:
    now = int(time.time())
    return mint(KEY, {"iss": idp.url, "sub": "system:serviceaccount:prod:orders",
                      "aud": "nats", "iat": now, "exp": now + 300})


async def test_the_issuers_ca_file_trusts_its_https_discovery_and_jwks(
        idp: Issuer, pki: Pki) -> None:
    found = await verifier(idp, ca_file=str(pki.ca_file)).verify(
        request(token(idp)), now=datetime.now(UTC))
    assert isinstance(found, Identity)
    assert idp.discovery_hits == 1 and idp.hits == 1


async def test_without_it_the_private_ca_is_not_trusted(idp: Issuer) -> None:
    with pytest.raises(UpstreamError):  # a fault: denied upstream_unavailable, fail closed
        await verifier(idp).verify(request(token(idp)), now=datetime.now(UTC))
    assert idp.hits == 0


async def test_another_ca_is_not_trusted_either(idp: Issuer, tmp_path: Path) -> None:
    other = Pki(tmp_path / "other", name="other CA")
    with pytest.raises(UpstreamError):
        await verifier(idp, ca_file=str(other.ca_file)).verify(
            request(token(idp)), now=datetime.now(UTC))


def test_an_unreadable_ca_file_is_a_settings_error(idp: Issuer, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    for path in (not_pem, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError):
            verifier(idp, ca_file=str(path))
