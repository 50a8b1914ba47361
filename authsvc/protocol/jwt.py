"""The NATS JWT codec (``ed25519-nkey``), compatible with nats-io/jwt v2.

Rules reproduced from jwt v2 ``claims.go`` / ``decoder.go`` / ``header.go``:

* header ``{"typ":"JWT","alg":"ed25519-nkey"}``; ``ed25519`` (v1) is still accepted on decode;
* v2 tokens (``nats.version == 2``) are signed over ``b64url(header) + "." + b64url(payload)``,
  base64url without padding; v1 tokens (top-level ``type`` or no ``nats.version``) were signed
  over the payload only. **We only accept v2**: the callout protocol is v2-only;
* ``jti = base32_nopad(SHA-512/256(json(ClaimsData with jti="")))`` where ClaimsData is the Go
  struct ``aud, exp, jti, iat, iss, name, nbf, sub`` (all ``omitempty``) and nothing else: the
  ``nats`` object is *not* hashed (``ClaimsData.hash`` marshals only ``*ClaimsData``);
* the payload is ClaimsData (same order, ``omitempty``) followed by ``nats``;
* tokens above 1 MiB are refused (jwt v2 ``MaxTokenSize``).

``encode`` is pure: it never reads a clock, the caller supplies ``iat``/``exp``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

import orjson

from authsvc.protocol.nkeys import (
    SIGNING_PREFIXES,
    KeyFormatError,
    KeyPair,
    Prefix,
    b32encode_nopad,
    parse_public_key,
)
from authsvc.protocol.nkeys import verify as _verify

__all__ = [
    "ALGORITHM",
    "CLAIMS_DATA_FIELDS",
    "HEADER",
    "MAX_TOKEN_SIZE",
    "JwtError",
    "JwtErrorKind",
    "compute_jti",
    "decode",
    "decode_unverified",
    "encode",
    "encode_with_id",
]

ALGORITHM = "ed25519-nkey"
_ALGORITHM_V1 = "ed25519"
HEADER: Mapping[str, str] = {"typ": "JWT", "alg": ALGORITHM}
MAX_TOKEN_SIZE = 1 << 20
# Go struct order of jwt.ClaimsData; the JSON order of both the jti hash input and the payload.
CLAIMS_DATA_FIELDS = ("aud", "exp", "jti", "iat", "iss", "name", "nbf", "sub")
_INT_FIELDS = frozenset({"exp", "iat", "nbf"})
_SUPPORTED_VERSION = 2
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Go's encoding/json escapes these even inside strings (HTML safety, JS line separators).
_GO_ESCAPES = (
    (b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"),
)


class JwtErrorKind(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    UNSUPPORTED_HEADER = "unsupported_header"
    BAD_ISSUER = "bad_issuer"
    BAD_SIGNATURE = "bad_signature"
    UNSUPPORTED_VERSION = "unsupported_version"


class JwtError(ValueError):
    """A token was refused. ``kind`` is the stable code; the text never contains the token."""

    def __init__(self, kind: JwtErrorKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _go_json(value: Any) -> bytes:
    """Compact JSON with Go ``encoding/json`` string escaping, so hashes match Go's.

    orjson (compact, UTF-8, insertion order, no NaN) is ~15x faster than json.dumps and this
    runs several times per connect; Go's extra escapes are applied to its output.
    """
    try:
        out = orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON-able, int beyond 64 bits
        raise ValueError(f"claims are not JSON-serialisable: {exc}") from None
    if b"null" in out:
        # orjson writes NaN/Infinity as null; Go refuses them. The slow check runs only here.
        json.dumps(value, allow_nan=False)
    for raw, escaped in _GO_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str, what: str) -> bytes:
    # Go base64.RawURLEncoding: URL alphabet, no padding; Python's decoder would skip junk.
    if len(segment) % 4 == 1 or not _B64URL.fullmatch(segment):
        raise JwtError(JwtErrorKind.MALFORMED, f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise JwtError(JwtErrorKind.MALFORMED, f"{what} is not base64url") from None


_HEADER_B64 = _b64url(_go_json(dict(HEADER)))


def _claims_data(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ClaimsData subset in Go order with ``omitempty`` applied (``""``/0/None dropped)."""
    data: dict[str, Any] = {}
    for name in CLAIMS_DATA_FIELDS:
        value = claims.get(name)
        if value is None or value == "" or value == 0:
            continue
        if name in _INT_FIELDS:
            if type(value) is not int:
                raise TypeError(f"claim {name!r} must be an int (unix seconds)")
        elif type(value) is not str:
            raise TypeError(f"claim {name!r} must be a string")
        data[name] = value
    return data


def compute_jti(claims: Mapping[str, Any]) -> str:
    """The Go-compatible ``jti`` of ``claims`` (its own ``jti`` is ignored, as in Go)."""
    data = _claims_data(claims)
    data.pop("jti", None)
    return _jti(data)


def _jti(data: Mapping[str, Any]) -> str:
    """base32-nopad(SHA-512/256(Go JSON of ClaimsData without jti))."""
    return b32encode_nopad(hashlib.new("sha512_256", _go_json(data)).digest())


def encode(claims: Mapping[str, Any], key: KeyPair) -> str:
    """Sign ``claims`` with ``key`` as a v2 NATS JWT (see :func:`encode_with_id`)."""
    return encode_with_id(claims, key)[0]


def encode_with_id(claims: Mapping[str, Any], key: KeyPair) -> tuple[str, str]:
    """Sign ``claims`` with ``key`` as a v2 NATS JWT; returns the token and its ``jti``.

    ``iss`` defaults to ``key.public_key`` (a different ``iss`` is an error: the token could
    never verify); ``jti`` is always derived, so passing one is an error too. Other members
    (normally just ``nats``) follow ClaimsData in the caller's order.
    """
    iss = claims.get("iss")
    if iss is not None and iss != key.public_key:
        raise ValueError("iss must be the signing key's public key")
    if claims.get("jti"):
        raise ValueError("jti is derived from the claims; do not pass one")
    data = _claims_data({**claims, "iss": key.public_key})
    jti = _jti(data)
    payload: dict[str, Any] = {}
    for name in CLAIMS_DATA_FIELDS:
        if name == "jti":
            payload["jti"] = jti
        elif name in data:
            payload[name] = data[name]
    for name, value in claims.items():
        if name not in payload and name not in CLAIMS_DATA_FIELDS:
            payload[name] = value
    signing_input = _HEADER_B64 + "." + _b64url(_go_json(payload))
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + _b64url(signature), jti


def _split(token: str | bytes, max_size: int) -> tuple[str, str, str]:
    if len(token) > max_size:
        raise JwtError(JwtErrorKind.TOO_LARGE, f"token exceeds {max_size} bytes")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise JwtError(JwtErrorKind.MALFORMED, "token is not ASCII") from None
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError(JwtErrorKind.MALFORMED, "expected 3 dot-separated parts")
    return parts[0], parts[1], parts[2]


def _json_object(segment: str, what: str) -> dict[str, Any]:
    raw = _b64url_decode(segment, what)
    try:
        # orjson refuses NaN/Infinity (as Go does), integers beyond 64 bits and deep nesting.
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        raise JwtError(JwtErrorKind.MALFORMED, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise JwtError(JwtErrorKind.MALFORMED, f"{what} is not a JSON object")
    return value


def _check_header(header_b64: str) -> None:
    if header_b64 == _HEADER_B64:  # the only header nats-server writes: skip the parse
        return
    header = _json_object(header_b64, "header")
    if header.get("typ") != "JWT" or header.get("alg") not in (ALGORITHM, _ALGORITHM_V1):
        raise JwtError(JwtErrorKind.UNSUPPORTED_HEADER, "header must be JWT/ed25519-nkey")


def _check_version(claims: Mapping[str, Any]) -> None:
    # decoder.go identifier.Version(): a top-level "type" marks a v1 token.
    nats = claims.get("nats")
    version = nats.get("version") if isinstance(nats, dict) else None
    if "type" in claims or type(version) is not int or version != _SUPPORTED_VERSION:
        raise JwtError(JwtErrorKind.UNSUPPORTED_VERSION, "only nats.version 2 tokens accepted")


def _check_issuer(claims: Mapping[str, Any], prefixes: Collection[Prefix]) -> str:
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise JwtError(JwtErrorKind.BAD_ISSUER, "iss missing")
    try:
        prefix, _ = parse_public_key(iss)
    except KeyFormatError:
        raise JwtError(JwtErrorKind.BAD_ISSUER, "iss is not a public nkey") from None
    if prefix not in prefixes:
        raise JwtError(JwtErrorKind.BAD_ISSUER, "iss has an unexpected key type")
    return iss


def decode_unverified(
    token: str | bytes, *, max_size: int = MAX_TOKEN_SIZE
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse ``(header, claims)`` WITHOUT checking header values, version or signature.

    For tools and tests only; never base a decision on the result.
    """
    header_b64, payload_b64, _ = _split(token, max_size)
    return _json_object(header_b64, "header"), _json_object(payload_b64, "payload")


def decode(
    token: str | bytes,
    *,
    max_size: int = MAX_TOKEN_SIZE,
    issuer_prefixes: Collection[Prefix] = SIGNING_PREFIXES,
) -> dict[str, Any]:
    """Verify a v2 NATS JWT and return its claims.

    Checks, in order: size, 3 parts, header, payload JSON object, ``nats.version == 2``,
    ``iss`` a public nkey whose type is in ``issuer_prefixes`` (jwt v2 ``ExpectedPrefixes``),
    then the ed25519 signature by ``iss`` over ``header.payload``. Raises :class:`JwtError`.
    Claim semantics (``exp``, ``aud``...) are the caller's business.
    """
    header_b64, payload_b64, signature_b64 = _split(token, max_size)
    _check_header(header_b64)
    claims = _json_object(payload_b64, "payload")
    _check_version(claims)
    iss = _check_issuer(claims, issuer_prefixes)
    signature = _b64url_decode(signature_b64, "signature")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not _verify(iss, signing_input, signature):
        raise JwtError(JwtErrorKind.BAD_SIGNATURE, "signature does not verify against iss")
    return claims
