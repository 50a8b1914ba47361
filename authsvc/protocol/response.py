"""Encode the ``authorization_response`` nats-server expects (``server/auth_callout.go``).

What the server checks (auth_callout.go ``processReply``): ``sub == user_nkey`` of the request,
``aud ==`` its server ID, a v2 signature (``nats.version: 2``, pitfall 5.5.1), exactly one of
``jwt``/``error``, the signer (config mode: the configured issuer account), an unexpired
``exp``. A response is sealed only when the request was sealed and we have a server xkey;
the server opens anything that does not start with ``eyJ`` and accepts plaintext too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix, is_public_key
from authsvc.protocol.request import ReplyAddress
from authsvc.protocol.xkeys import CurveKeyPair

__all__ = ["AUTH_RESPONSE_TYPE", "encode_response", "encode_user_jwt"]

AUTH_RESPONSE_TYPE = "authorization_response"


def encode_user_jwt(claims: Mapping[str, Any], signer: KeyPair) -> str:
    """Sign user claims (built by minting) as a v2 NATS JWT; see :func:`jwt.encode`."""
    return jwt.encode(claims, signer)


def _response_nats(
    user_jwt: str | None, error: str | None, issuer_account: str | None
) -> dict[str, Any]:
    # jwt v2 AuthorizationResponseClaims.Validate: exactly one of jwt/error, both non-empty.
    if bool(user_jwt) == bool(error):
        raise ValueError("exactly one non-empty user_jwt or error is required")
    if issuer_account is not None and not is_public_key(issuer_account, Prefix.ACCOUNT):
        raise ValueError("issuer_account must be an account public key")
    # Go struct order of AuthorizationResponse: jwt, error, issuer_account, type, version.
    nats: dict[str, Any] = {"jwt": user_jwt} if user_jwt else {"error": error}
    if issuer_account is not None:
        nats["issuer_account"] = issuer_account
    nats["type"] = AUTH_RESPONSE_TYPE
    nats["version"] = 2
    return nats


def encode_response(
    *,
    reply_to: ReplyAddress,
    signer: KeyPair,
    now: datetime,
    user_jwt: str | None = None,
    error: str | None = None,
    issuer_account: str | None = None,
    xkey: CurveKeyPair | None = None,
    ttl: timedelta = timedelta(seconds=30),
) -> bytes:
    """The reply payload for one request: a signed response JWT, sealed when appropriate.

    ``signer`` must be an account key (jwt v2 ``ExpectedPrefixes``: the issuer account or one
    of its signing keys). ``ttl`` bounds the response itself, not the user JWT inside it.
    Raises ``ValueError`` on caller mistakes (both/neither of user_jwt/error, bad keys).
    """
    if signer.prefix is not Prefix.ACCOUNT:
        raise ValueError("responses must be signed by an account key")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    iat = int(now.timestamp())
    claims = {
        "aud": reply_to.server_id,
        "exp": iat + math.ceil(ttl.total_seconds()),
        "iat": iat,
        "sub": reply_to.user_nkey,
        "nats": _response_nats(user_jwt, error, issuer_account),
    }
    token = jwt.encode(claims, signer).encode("ascii")
    if reply_to.sealed and xkey is not None and reply_to.server_xkey:
        return xkey.seal(token, reply_to.server_xkey)
    return token
