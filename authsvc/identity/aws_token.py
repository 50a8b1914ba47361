"""The AWS IAM token: a signed STS ``GetCallerIdentity`` request, carried in CONNECT.

Format (version 1)::

    aws-sts-v1.<base64url, unpadded, of a compact JSON object>

    {"host": "sts.eu-west-1.amazonaws.com",
     "body": "Action=GetCallerIdentity&Version=2011-06-15",
     "headers": {"X-Amz-Date": "20261124T225159Z",
                 "X-Amz-Security-Token": "IQoJb3JpZ2luX2Vj...",
                 "X-Authsvc-Server-Id": "nats-prod",
                 "X-Authsvc-Nonce": "Vt9mtsUFx6M3Q4w",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=ASIA.../20261124/eu-west-1/sts/
                    aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;
                    x-authsvc-nonce;x-authsvc-server-id, Signature=<64 hex>"}}   (one line)

Method (``POST``) and path (``/``) are fixed and therefore not sent. The prefix routes the
token to the AWS verifier before any JWT parsing. Decoding only parses: every object key
must be unique, header names ASCII and unique case-insensitively (CVE-2022-2385 was a
case-variant duplicate), and nothing else is judged here; ``aws_proof.rebuild`` does the
checks. The secret key never leaves the client; the session token does (STS needs it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authsvc.domain import Deny, DenyReason

PREFIX = "aws-sts-v1."
GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
DEFAULT_MAX_TOKEN_BYTES = 8 * 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_FIELDS = frozenset({"host", "body", "headers"})


@dataclass(frozen=True, slots=True)
class StsProof:
    """The parts of a client's signed request, parsed but not yet trusted.

    ``headers`` maps lower-cased names to values, in the order the client sent them.
    """

    host: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


class _Duplicate(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _Duplicate(name)
        seen[name] = value
    return seen


def encode_proof(host: str, body: str, headers: Mapping[str, str]) -> str:
    """The token for a signed request (used by the client helper)."""
    document = {"host": host, "body": body, "headers": dict(headers)}
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def is_aws_token(token: str) -> bool:
    """Whether ``token`` is meant for the AWS verifier (it carries the prefix)."""
    return token.startswith(PREFIX)


def decode_proof(token: str, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> StsProof | Deny:
    """Parse an ``aws-sts-v1.`` token into its parts, or say why it is unreadable."""
    if len(token) > max_bytes:
        return Deny(DenyReason.TOKEN_TOO_LARGE, f"aws token of {len(token)} bytes > {max_bytes}")
    payload = token.removeprefix(PREFIX)
    if not _BASE64URL.fullmatch(payload):
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "aws token is not base64url")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        document = json.loads(raw, object_pairs_hook=_unique)
    except _Duplicate as exc:
        return Deny(DenyReason.STS_PARAMETER_DUPLICATE, f"aws token repeats {str(exc)[:40]!r}")
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "aws token is not a JSON object")
    return _proof(document)


def _proof(document: object) -> StsProof | Deny:
    if not isinstance(document, dict) or set(document) != _FIELDS:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, f"aws token needs exactly {sorted(_FIELDS)}")
    host, body, headers = document["host"], document["body"], document["headers"]
    if not (isinstance(host, str) and isinstance(body, str) and isinstance(headers, dict)):
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "aws token field of the wrong type")
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            return Deny(DenyReason.STS_REQUEST_MALFORMED, f"header {name[:40]!r} is not a string")
        # Before folding: str.lower() maps non-ASCII letters onto ASCII ones (U+212A KELVIN
        # SIGN to "k"), so "X-Amz-Security-To\u212aen" would pass as the allow-listed header.
        # HTTP field names are ASCII tokens (RFC 9110 5.1).
        if not name.isascii():
            return Deny(DenyReason.STS_REQUEST_MALFORMED, f"header name {name[:40]!r} is not "
                        "ASCII")
        if name.lower() in lowered:
            return Deny(DenyReason.STS_PARAMETER_DUPLICATE, f"header {name[:40]!r} given twice")
        lowered[name.lower()] = value
    return StsProof(host=host, body=body, headers=lowered)
