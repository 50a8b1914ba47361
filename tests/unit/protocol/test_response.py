from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import ReplyAddress, RequestRules, decode_request
from authsvc.protocol.response import encode_response, encode_user_jwt
from authsvc.protocol.xkeys import CurveKeyPair
from tests.support.callout import FakeServer, build_request

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ISSUER = KeyPair.create(Prefix.ACCOUNT)
SERVER = FakeServer.create()
SERVICE = CurveKeyPair.create()
USER = KeyPair.create(Prefix.USER).public_key
PLAIN_REPLY = ReplyAddress(user_nkey=USER, server_id=SERVER.id, server_xkey="", sealed=False)
SEALED_REPLY = ReplyAddress(
    user_nkey=USER, server_id=SERVER.id, server_xkey=SERVER.xkey, sealed=True
)


def user_jwt() -> str:
    claims = {
        "aud": "APP",
        "exp": int(NOW.timestamp()) + 3600,
        "iat": int(NOW.timestamp()),
        "name": "alice",
        "sub": USER,
        "nats": {
            "pub": {"allow": ["app.>"]},
            "sub": {"allow": ["_INBOX.>"]},
            "type": "user",
            "version": 2,
        },
    }
    return encode_user_jwt(claims, ISSUER)


def server_side(payload: bytes) -> dict[str, Any]:
    """What auth_callout.go does with a reply: open if not eyJ, decode, check sub/aud."""
    if not payload.startswith(b"eyJ"):
        payload = SERVER.curve.open(payload, SERVICE.public_key)
    claims = jwt.decode(payload, issuer_prefixes={Prefix.ACCOUNT})
    assert claims["sub"] == USER
    assert claims["aud"] == SERVER.id
    return claims


def test_allow_response_claims() -> None:
    token = user_jwt()
    claims = server_side(
        encode_response(reply_to=PLAIN_REPLY, signer=ISSUER, now=NOW, user_jwt=token)
    )
    iat = int(NOW.timestamp())
    assert claims["iss"] == ISSUER.public_key
    assert claims["iat"] == iat and claims["exp"] == iat + 30
    assert claims["nats"] == {"jwt": token, "type": "authorization_response", "version": 2}
    inner = jwt.decode(claims["nats"]["jwt"])
    assert inner["sub"] == USER and inner["nats"]["version"] == 2


def test_error_response_with_issuer_account_and_ttl() -> None:
    account = KeyPair.create(Prefix.ACCOUNT).public_key
    payload = encode_response(
        reply_to=PLAIN_REPLY,
        signer=ISSUER,
        now=NOW,
        error="no_matching_rule",
        issuer_account=account,
        ttl=timedelta(seconds=5, milliseconds=1),
    )
    claims = server_side(payload)
    assert claims["nats"] == {
        "error": "no_matching_rule",
        "issuer_account": account,
        "type": "authorization_response",
        "version": 2,
    }
    assert claims["exp"] - claims["iat"] == 6  # a partial second rounds up, never down


def test_sealed_reply_is_sealed_to_the_server_xkey() -> None:
    payload = encode_response(
        reply_to=SEALED_REPLY, signer=ISSUER, now=NOW, error="denied", xkey=SERVICE
    )
    assert payload.startswith(b"xkv1")
    assert server_side(payload)["nats"]["error"] == "denied"


@pytest.mark.parametrize(
    ("reply_to", "xkey"),
    [
        pytest.param(
            ReplyAddress(
                user_nkey=USER, server_id=SERVER.id, server_xkey=SERVER.xkey, sealed=False
            ),
            SERVICE,
            id="plaintext-request",
        ),
        pytest.param(SEALED_REPLY, None, id="no-service-xkey"),
        pytest.param(
            ReplyAddress(user_nkey=USER, server_id=SERVER.id, server_xkey="", sealed=True),
            SERVICE,
            id="no-server-xkey",
        ),
    ],
)
def test_plaintext_reply_when_sealing_is_not_possible(
    reply_to: ReplyAddress, xkey: CurveKeyPair | None
) -> None:
    payload = encode_response(reply_to=reply_to, signer=ISSUER, now=NOW, error="x", xkey=xkey)
    assert payload.startswith(b"eyJ")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="neither"),
        pytest.param({"user_jwt": "eyJ.a.b", "error": "x"}, id="both"),
        pytest.param({"error": ""}, id="empty-error"),
        pytest.param({"user_jwt": ""}, id="empty-jwt"),
        pytest.param({"error": "x", "issuer_account": USER}, id="issuer-not-account"),
        pytest.param({"error": "x", "ttl": timedelta(0)}, id="zero-ttl"),
        pytest.param({"error": "x", "now": NOW.replace(tzinfo=None)}, id="naive-now"),
        pytest.param(
            {"error": "x", "signer": KeyPair.create(Prefix.OPERATOR)}, id="operator-signer"
        ),
    ],
)
def test_caller_mistakes(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"reply_to": PLAIN_REPLY, "signer": ISSUER, "now": NOW} | kwargs
    with pytest.raises(ValueError):
        encode_response(**args)


def test_encode_user_jwt_is_jwt_encode() -> None:
    claims = {"sub": USER, "iat": 1, "nats": {"type": "user", "version": 2}}
    assert encode_user_jwt(claims, ISSUER) == jwt.encode(claims, ISSUER)


@pytest.mark.parametrize("sealed", [False, True], ids=["plaintext", "sealed"])
def test_request_to_response_round_trip(sealed: bool) -> None:
    service_xkey = SERVICE.public_key if sealed else None
    payload, headers = build_request(SERVER, now=NOW, service_xkey=service_xkey, user_nkey=USER)
    rules = RequestRules(xkey=SERVICE, require_xkey=sealed)
    request = decode_request(payload, headers, now=NOW, rules=rules)
    reply_to = ReplyAddress(
        user_nkey=request.user_nkey,
        server_id=request.server.id,
        server_xkey=request.server.xkey,
        sealed=request.sealed,
    )
    reply = encode_response(
        reply_to=reply_to, signer=ISSUER, now=NOW, user_jwt=user_jwt(), xkey=SERVICE
    )
    assert reply.startswith(b"xkv1") is sealed
    assert server_side(reply)["nats"]["jwt"]
