"""nkey proof of possession over the server nonce."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    ServerInfo,
)
from authsvc.identity import NkeyVerifier, VerifierRegistry
from authsvc.protocol.nkeys import KeyPair, Prefix

NOW = datetime(2026, 11, 24, tzinfo=UTC)
KEY = KeyPair.create(Prefix.USER)
NONCE = "abc123nonce"


def request(nkey: str = KEY.public_key, sig: str = "", nonce: str = NONCE) -> ConnectRequest:
    return ConnectRequest(server=ServerInfo(id="N1"), user_nkey="U2",
                          client=ClientInfo(nonce=nonce),
                          connect=ConnectOptions(nkey=nkey, sig=sig),
                          request_id="j", issued_at=NOW, expires_at=NOW)


def std(sig: bytes) -> str:
    return base64.b64encode(sig).decode()


def raw_url(sig: bytes) -> str:
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


@pytest.mark.parametrize("encode", [std, raw_url], ids=["std", "raw-url"])
async def test_valid_signature_in_either_encoding(encode: object) -> None:
    sig = encode(KEY.sign(NONCE.encode()))  # type: ignore[operator]
    result = await NkeyVerifier().verify(request(sig=sig), now=NOW)
    assert isinstance(result, Identity)
    assert result.principal == f"nkey:{KEY.public_key}"


@pytest.mark.parametrize(("req", "reason"), [
    (request(sig=std(KeyPair.create(Prefix.USER).sign(NONCE.encode()))),
     DenyReason.NKEY_SIGNATURE_INVALID),
    (request(sig=std(KEY.sign(b"other-nonce"))), DenyReason.NKEY_SIGNATURE_INVALID),
    (request(sig="not base64!"), DenyReason.CREDENTIALS_MALFORMED),
    (request(sig=std(b"short")), DenyReason.CREDENTIALS_MALFORMED),
    (request(sig=""), DenyReason.CREDENTIALS_MALFORMED),
    (request(nonce="", sig=std(KEY.sign(b""))), DenyReason.NONCE_MISSING),
    (request(nkey=KeyPair.create(Prefix.ACCOUNT).public_key, sig="x"),
     DenyReason.CREDENTIALS_MALFORMED),
    (request(nkey="UNOTAKEY"), DenyReason.CREDENTIALS_MALFORMED),
])
async def test_refusals(req: ConnectRequest, reason: DenyReason) -> None:
    result = await NkeyVerifier().verify(req, now=NOW)
    assert isinstance(result, Deny)
    assert result.reason == reason


async def test_registry_without_credentials_denies_no_credentials() -> None:
    result = await VerifierRegistry([NkeyVerifier()]).verify(request(nkey=""), now=NOW)
    assert isinstance(result, Deny) and result.reason == DenyReason.NO_CREDENTIALS
