"""Decode and validate one ``authorization_request`` from nats-server (``auth_callout.go``).

Every refusal is a :class:`RequestRejected` carrying a stable :class:`DenyReason`. Checks run in
this order (earlier wins):

1. size: over ``max_request_bytes`` -> REQUEST_TOO_LARGE; empty -> REQUEST_MALFORMED.
2. envelope: a payload not starting with ``eyJ`` is sealed (the server's own test,
   auth_callout.go ``decodeResponse``). Sealed without a configured xkey -> XKEY_NOT_CONFIGURED
   (nothing to open it with, so never answered). Plaintext while ``require_xkey`` ->
   XKEY_REQUIRED, but only after step 3, so that the refusal can be addressed to the
   verified server and user and answered. A sealed payload whose
   ``Nats-Server-Xkey`` header is missing or not an ``X...`` key -> XKEY_DECRYPT_FAILED (the
   header *is* the sender key of the box, so without it there is nothing to decrypt with);
   a box that does not open -> XKEY_DECRYPT_FAILED.
3. JWT: signature by a server (``N...``) key over header.payload -> else REQUEST_BAD_SIGNATURE;
   too large -> REQUEST_TOO_LARGE; not v2 -> REQUEST_WRONG_TYPE; other damage -> MALFORMED.
4. claims (signature verified, so ``reply_to`` is set from here on when ``user_nkey`` is a
   valid ``U...`` key): type/version, ``aud``, ``iss == server_id.id``, server allow-list,
   ``exp``/``nbf`` with leeway, header xkey == signed ``server_id.xkey``, ``user_nkey``.
5. fields: strict JSON types (MALFORMED) and per-string cap (TOO_LARGE).

Detail strings are for the audit log; they never contain credentials or the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authsvc.domain import ConnectRequest, DenyReason
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import Prefix, is_public_key
from authsvc.protocol.request_fields import (
    FieldError,
    Fields,
    epoch,
    read_client,
    read_connect,
    read_server,
    read_tls,
)
from authsvc.protocol.xkeys import CurveKeyPair, XKeyError

__all__ = [
    "AUTH_REQUEST_AUDIENCE",
    "AUTH_REQUEST_TYPE",
    "SERVER_XKEY_HEADER",
    "ReplyAddress",
    "RequestRejected",
    "RequestRules",
    "decode_request",
]

AUTH_REQUEST_AUDIENCE = "nats-authorization-request"  # auth_callout.go AuthRequestSubject
AUTH_REQUEST_TYPE = "authorization_request"
SERVER_XKEY_HEADER = "Nats-Server-Xkey"  # auth_callout.go AuthRequestXKeyHeader
_JWT_PREFIX = b"eyJ"  # base64url of '{"' : every JWT starts with it, no xkv1 box does
_JWT_REASONS = {
    jwt.JwtErrorKind.TOO_LARGE: DenyReason.REQUEST_TOO_LARGE,
    jwt.JwtErrorKind.BAD_SIGNATURE: DenyReason.REQUEST_BAD_SIGNATURE,
    jwt.JwtErrorKind.BAD_ISSUER: DenyReason.REQUEST_BAD_SIGNATURE,
    jwt.JwtErrorKind.UNSUPPORTED_VERSION: DenyReason.REQUEST_WRONG_TYPE,
}
_SERVER_ONLY = frozenset({Prefix.SERVER})


@dataclass(frozen=True, slots=True)
class RequestRules:
    """What the service accepts. Secure by default except xkey, which depends on deployment."""

    xkey: CurveKeyPair | None = None  # the service curve key; None = no xkey configured
    require_xkey: bool = False  # refuse plaintext requests
    allowed_servers: frozenset[str] = frozenset()  # server public keys; empty = any server
    max_request_bytes: int = 64 * 1024
    max_field_bytes: int = 16 * 1024  # cap on every string field (tokens, certs, names)
    leeway: timedelta = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    """Where a response must point: ``sub=user_nkey``, ``aud=server_id`` (auth_callout.go)."""

    user_nkey: str
    server_id: str
    server_xkey: str  # signed server_id.xkey when it is a valid X key, else ""
    sealed: bool  # the request came sealed, so the reply may be sealed too


class RequestRejected(Exception):
    """The request cannot be served. ``reply_to`` is set only once the signature verified."""

    def __init__(
        self, reason: DenyReason, detail: str, reply_to: ReplyAddress | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.reply_to = reply_to


def decode_request(
    payload: bytes, headers: Mapping[str, str] | None, *, now: datetime, rules: RequestRules
) -> ConnectRequest:
    """Open, verify and type one callout request message. Raises :class:`RequestRejected`.

    ``now`` must be timezone-aware; it is the only clock the check uses.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if len(payload) > rules.max_request_bytes:
        raise RequestRejected(DenyReason.REQUEST_TOO_LARGE, f"{len(payload)} bytes")
    if not payload:
        raise RequestRejected(DenyReason.REQUEST_MALFORMED, "empty request")
    sealed = not payload.startswith(_JWT_PREFIX)
    token, header_xkey = _unseal(payload, headers, rules) if sealed else (payload, "")
    claims = _verified_claims(token, rules)
    reply_to = _reply_address(claims, sealed)
    if not sealed and rules.require_xkey:
        # Signed by the server: answer (in plaintext, as it asked), so a server without the
        # xkey refuses its clients at once with this reason instead of timing them out.
        raise RequestRejected(DenyReason.XKEY_REQUIRED, "plaintext request refused", reply_to)
    try:
        _check_claims(claims, sealed=sealed, header_xkey=header_xkey, now=now, rules=rules)
        return _connect_request(claims, sealed=sealed, raw_size=len(payload), rules=rules)
    except FieldError as exc:
        raise RequestRejected(exc.reason, exc.detail, reply_to) from None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:  # header names are case-preserving; tolerate a rewritten case
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def _unseal(
    payload: bytes, headers: Mapping[str, str] | None, rules: RequestRules
) -> tuple[bytes, str]:
    if rules.xkey is None:
        raise RequestRejected(DenyReason.XKEY_NOT_CONFIGURED, "sealed request, no xkey")
    sender = _header(headers, SERVER_XKEY_HEADER)
    if sender is None or not is_public_key(sender, Prefix.CURVE):
        raise RequestRejected(DenyReason.XKEY_DECRYPT_FAILED, "missing or bad server xkey header")
    try:
        return rules.xkey.open(payload, sender), sender
    except XKeyError as exc:
        raise RequestRejected(DenyReason.XKEY_DECRYPT_FAILED, str(exc)) from None


def _verified_claims(token: bytes, rules: RequestRules) -> dict[str, Any]:
    try:
        return jwt.decode(token, max_size=rules.max_request_bytes, issuer_prefixes=_SERVER_ONLY)
    except jwt.JwtError as exc:
        reason = _JWT_REASONS.get(exc.kind, DenyReason.REQUEST_MALFORMED)
        raise RequestRejected(reason, exc.detail) from None


def _reply_address(claims: Mapping[str, Any], sealed: bool) -> ReplyAddress | None:
    nats = claims["nats"]  # jwt.decode guarantees a dict carrying version 2
    user_nkey = nats.get("user_nkey")
    if not is_public_key(user_nkey, Prefix.USER):
        return None  # nats-server would refuse any response not issued to a U... key
    server = nats.get("server_id")
    xkey = server.get("xkey") if isinstance(server, dict) else None
    return ReplyAddress(
        user_nkey=user_nkey,
        server_id=claims["iss"],  # verified signer == the server's ID (checked below)
        server_xkey=xkey if is_public_key(xkey, Prefix.CURVE) else "",
        sealed=sealed,
    )


def _check_claims(
    claims: Mapping[str, Any], *, sealed: bool, header_xkey: str, now: datetime, rules: RequestRules
) -> None:
    nats = claims["nats"]
    if nats.get("type") != AUTH_REQUEST_TYPE or nats.get("version") != 2:
        raise FieldError(DenyReason.REQUEST_WRONG_TYPE, "not an authorization_request v2")
    if claims.get("aud") != AUTH_REQUEST_AUDIENCE:
        raise FieldError(DenyReason.REQUEST_MISADDRESSED, "aud is not nats-authorization-request")
    server = nats.get("server_id")
    if not isinstance(server, dict):
        raise FieldError(DenyReason.REQUEST_MALFORMED, "nats.server_id must be an object")
    iss = claims["iss"]
    if server.get("id") != iss:
        raise FieldError(DenyReason.REQUEST_MISADDRESSED, f"signed by {iss}, not server_id.id")
    if rules.allowed_servers and iss not in rules.allowed_servers:
        raise FieldError(DenyReason.SERVER_NOT_ALLOWED, f"server {iss} not allowed")
    _check_window(claims, now, rules.leeway)
    # The header key opened the box; the signed claim says which key the server owns.
    if sealed and server.get("xkey") != header_xkey:
        raise FieldError(DenyReason.XKEY_MISMATCH, "header xkey != signed server_id.xkey")
    if not is_public_key(nats.get("user_nkey"), Prefix.USER):
        raise FieldError(DenyReason.REQUEST_MALFORMED, "nats.user_nkey is not a user key")


def _check_window(claims: Mapping[str, Any], now: datetime, leeway: timedelta) -> None:
    # The server sets exp = iat + auth timeout (1.4); a request without exp never expires: refuse.
    if claims.get("exp") is None:
        raise FieldError(DenyReason.REQUEST_EXPIRED, "exp missing")
    if epoch(claims["exp"], "exp") + leeway < now:
        raise FieldError(DenyReason.REQUEST_EXPIRED, "exp passed")
    # jwt v2 ClaimsData.Validate also honours nbf; the server never sets it, but if present
    # a not-yet-valid request is outside its window too.
    if claims.get("nbf") is not None and epoch(claims["nbf"], "nbf") - leeway > now:
        raise FieldError(DenyReason.REQUEST_EXPIRED, "nbf in the future")


def _connect_request(
    claims: Mapping[str, Any], *, sealed: bool, raw_size: int, rules: RequestRules
) -> ConnectRequest:
    top = Fields(claims, "", rules.max_field_bytes)
    nats = Fields(claims["nats"], "nats", rules.max_field_bytes)
    server = nats.object("server_id")
    assert server is not None  # _check_claims proved it is an object
    return ConnectRequest(
        server=read_server(server),
        user_nkey=nats.text("user_nkey"),
        client=read_client(nats.object("client_info")),
        connect=read_connect(nats.object("connect_opts")),
        request_id=top.text("jti"),
        issued_at=epoch(claims.get("iat"), "iat"),
        expires_at=epoch(claims["exp"], "exp"),
        sealed=sealed,
        tls=read_tls(nats.object("client_tls")),
        raw_size=raw_size,
    )
