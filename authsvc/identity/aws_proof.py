"""Rebuild the STS request from trusted parts, or refuse it. Pure: no I/O, ``now`` injected.

"Reconstruct, don't validate" (the lesson of Vault CVE-2020-16250): the
request authsvc sends to STS is assembled here from constants and from client parts that
passed a check, never forwarded as the client wrote it:

* method ``POST`` and path ``/`` are constants; the body must be byte for byte
  ``Action=GetCallerIdentity&Version=2011-06-15`` (another action, an extra parameter, a
  case variant or a repeat is refused with its own code);
* the host must be an STS endpoint (``sts.amazonaws.com``, ``sts[-fips].<region>
  .amazonaws.com[.cn]``, ASCII only), optionally limited to ``regions`` (production should
  set it: without it, the client picks which region-shaped name authsvc resolves); the URL
  comes from the configured ``endpoints`` or is ``https://<host>/``, never from the client;
* only allow-listed headers pass, each of them signed; the server-ID header must carry this
  deployment's value and be signed (Vault ``iam_server_id_header_value``, the
  ``x-k8s-aws-id`` of aws-iam-authenticator);
* the credential scope must be ``<date>/<host region>/sts/aws4_request``, and ``X-Amz-Date``
  no older than ``max_age`` (STS honours 15 minutes, moto none at all) nor further ahead
  than ``clock_skew``;
* a signed nonce header, when present (or required), must equal the nonce nats-server
  forwarded for this connection, so the proof cannot be replayed on another connection.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from authsvc.domain import Deny, DenyReason
from authsvc.identity.aws_token import DEFAULT_MAX_TOKEN_BYTES, GET_CALLER_IDENTITY_BODY, StsProof

GLOBAL_HOST = "sts.amazonaws.com"  # the global endpoint signs with region us-east-1
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_CONTENT_TYPES = frozenset({FORM_CONTENT_TYPE, "application/x-www-form-urlencoded"})
# SigV4 headers a GetCallerIdentity request needs; anything else (x-amz-target, x-forwarded-*,
# a client-chosen host) is refused, as Vault refuses X-Amz-* headers off its allow-list.
_SIGV4_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token",
                            "x-amz-content-sha256", "content-type"})
# ASCII classes only, here and in aws_arn/sts: in a str pattern \d is any Unicode digit (with
# it, a fullwidth U+FF11 for the "1" of eu-west-1 made an STS host and a valid ``regions``
# entry), and int() reads such digits too.
# [0-9] and [a-z] without IGNORECASE (which lets [a-z] match U+212A KELVIN SIGN) are exact.
_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}"
_STS_HOST = re.compile(rf"sts(?:-fips)?\.(?P<region>{_REGION})\.amazonaws\.com(?:\.cn)?")
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]{16,128})/(?P<date>[0-9]{8})/"
    r"(?P<region>[a-z0-9-]{1,40})/sts/aws4_request, ?"
    r"SignedHeaders=(?P<signed>[a-z0-9-]{1,64}(?:;[a-z0-9-]{1,64}){0,15}), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})")
_AMZ_DATE_SHAPE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e]+")  # no CR/LF: no header injection
_MAX_HEADER_VALUE = 4096
# AWS sets no maximum on session tokens (Lambda's are ~1,100 characters, some longer): the
# only cap on this one is the configured max_token_bytes of the token that carries it.
_STS_SESSION_HEADER = "x-amz-security-token"


@dataclass(frozen=True, slots=True)
class ProofRules:
    """What a proof must satisfy. Header names are lower case."""

    server_id: str
    server_id_header: str = "x-authsvc-server-id"
    nonce_header: str = "x-authsvc-nonce"
    require_nonce: bool = False
    max_age: timedelta = timedelta(minutes=15)
    clock_skew: timedelta = timedelta(seconds=60)
    regions: frozenset[str] = frozenset()  # empty: any region
    endpoints: Mapping[str, str] = field(default_factory=dict)  # host -> URL to send to


@dataclass(frozen=True, slots=True)
class StsCall:
    """The request to send to STS, built from constants and checked parts."""

    url: str
    host: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    signed_at: datetime
    key_fingerprint: str  # of the access key id, for audit correlation; never the key
    # Whether the deployment named this host (a ``regions`` list or an ``endpoints`` entry).
    # If not, the client chose it: a name that does not resolve is its error, not STS's.
    host_configured: bool = True


@dataclass(frozen=True, slots=True)
class _Authorization:
    key: str
    date: str
    region: str
    signed: tuple[str, ...]


def sts_region(host: str) -> str | None:
    """The signing region of an STS endpoint host name, or None if it is not one."""
    if host == GLOBAL_HOST:
        return "us-east-1"
    match = _STS_HOST.fullmatch(host)
    if match is None or host.endswith(".cn") != match["region"].startswith("cn-"):
        return None
    return match["region"]


def rebuild(proof: StsProof, rules: ProofRules, *, nonce: str, now: datetime,
            max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> StsCall | Deny:
    """The STS request to send for ``proof``, or why it is refused (before any I/O).

    ``max_token_bytes`` is the verifier's cap on the whole token, which the session token
    may fill; every other header value is capped at 4,096 characters.
    """
    region = _host_region(proof.host, rules)
    if isinstance(region, Deny):
        return region
    refused = _check_body(proof.body) or _check_header_names(proof.headers, rules,
                                                            max_token_bytes)
    if refused is not None:
        return refused
    auth = _authorization(proof.headers.get("authorization", ""))
    if isinstance(auth, Deny):
        return auth
    refused = (_check_scope(auth, region) or _check_signed(auth, proof.headers, rules)
               or _check_nonce(proof.headers, rules, nonce)
               or _check_payload_hash(proof.headers))
    if refused is not None:
        return refused
    signed_at = _signed_at(proof.headers.get("x-amz-date", ""), auth, rules, now)
    if isinstance(signed_at, Deny):
        return signed_at
    headers = [("Host", proof.host)]
    if "content-type" not in proof.headers:
        headers.append(("Content-Type", FORM_CONTENT_TYPE))
    headers.extend(proof.headers.items())
    url = rules.endpoints.get(proof.host, f"https://{proof.host}/")
    return StsCall(url=url, host=proof.host, headers=tuple(headers),
                   body=GET_CALLER_IDENTITY_BODY.encode(), signed_at=signed_at,
                   key_fingerprint=_fingerprint(auth.key),
                   host_configured=bool(rules.regions) or proof.host in rules.endpoints)


def _host_region(host: str, rules: ProofRules) -> str | Deny:
    region = sts_region(host)
    if region is None:
        return Deny(DenyReason.STS_HOST_NOT_ALLOWED, f"{host[:80]!r} is not an STS endpoint")
    if rules.regions and region not in rules.regions:
        return Deny(DenyReason.STS_HOST_NOT_ALLOWED, f"region {region} is not allowed")
    return region


def _check_body(body: str) -> Deny | None:
    # Parsed by hand, not with parse_qs: it would merge repeats and accept ';' or blanks.
    names: set[str] = set()
    for pair in body.split("&"):
        name, equals, value = pair.partition("=")
        if not equals or not name:
            return Deny(DenyReason.STS_REQUEST_MALFORMED, "body is not name=value pairs")
        if name.lower() in names:
            return Deny(DenyReason.STS_PARAMETER_DUPLICATE, f"parameter {name[:40]!r} repeated")
        names.add(name.lower())
        if name not in ("Action", "Version"):
            return Deny(DenyReason.STS_ACTION_NOT_ALLOWED, f"parameter {name[:40]!r} not allowed")
        if name == "Action" and value != "GetCallerIdentity":
            return Deny(DenyReason.STS_ACTION_NOT_ALLOWED, f"action {value[:40]!r} not allowed")
    if body != GET_CALLER_IDENTITY_BODY:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, f"body is not {GET_CALLER_IDENTITY_BODY}")
    return None


def _check_header_names(headers: Mapping[str, str], rules: ProofRules,
                        max_token_bytes: int) -> Deny | None:
    allowed = _SIGV4_HEADERS | {rules.server_id_header, rules.nonce_header}
    for name, value in headers.items():
        if name not in allowed:
            return Deny(DenyReason.STS_HEADER_NOT_ALLOWED, f"header {name[:40]!r} not allowed")
        cap = max_token_bytes if name == _STS_SESSION_HEADER else _MAX_HEADER_VALUE
        if len(value) > cap or not _VISIBLE_ASCII.fullmatch(value):
            return Deny(DenyReason.STS_REQUEST_MALFORMED, f"header {name} has a bad value")
    content_type = headers.get("content-type")
    if content_type is not None and content_type not in _CONTENT_TYPES:
        return Deny(DenyReason.STS_HEADER_NOT_ALLOWED, "content-type is not a form")
    if headers.get(rules.server_id_header) != rules.server_id:
        return Deny(DenyReason.STS_SERVER_ID_MISMATCH, "server-ID header missing or wrong")
    return None


def _authorization(value: str) -> _Authorization | Deny:
    match = _AUTHORIZATION.fullmatch(value)
    if match is None:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "authorization is not one SigV4 "
                    "AWS4-HMAC-SHA256 header")
    return _Authorization(key=match["key"], date=match["date"], region=match["region"],
                          signed=tuple(match["signed"].split(";")))


def _check_scope(auth: _Authorization, region: str) -> Deny | None:
    if auth.region != region:
        return Deny(DenyReason.STS_REQUEST_MALFORMED,
                    f"credential scope region {auth.region} does not match the host ({region})")
    return None


def _check_signed(auth: _Authorization, headers: Mapping[str, str],
                  rules: ProofRules) -> Deny | None:
    signed = set(auth.signed)
    if len(signed) != len(auth.signed):
        return Deny(DenyReason.STS_PARAMETER_DUPLICATE, "SignedHeaders repeats a name")
    if rules.server_id_header not in signed:
        return Deny(DenyReason.STS_SERVER_ID_MISMATCH, "server-ID header is not signed")
    unknown = signed - set(headers) - {"host"}
    if unknown:
        return Deny(DenyReason.STS_HEADER_NOT_ALLOWED, f"signs headers not sent: {sorted(unknown)}")
    unsigned = set(headers) - signed - {"authorization"}
    if unsigned:
        return Deny(DenyReason.STS_HEADER_NOT_ALLOWED, f"unsigned headers: {sorted(unsigned)}")
    if not {"host", "x-amz-date"} <= signed:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "host and x-amz-date must be signed")
    return None


def _check_nonce(headers: Mapping[str, str], rules: ProofRules, nonce: str) -> Deny | None:
    bound = headers.get(rules.nonce_header)
    if bound is None:
        if rules.require_nonce:
            return Deny(DenyReason.STS_NONCE_MISMATCH, "proof is not bound to a connection nonce")
        return None
    if not nonce:
        return Deny(DenyReason.STS_NONCE_MISMATCH, "proof is nonce-bound but the connection "
                    "has no nonce (the client sent no sig)")
    if bound != nonce:
        return Deny(DenyReason.STS_NONCE_MISMATCH, "proof is bound to another connection")
    return None


def _check_payload_hash(headers: Mapping[str, str]) -> Deny | None:
    claimed = headers.get("x-amz-content-sha256")
    expected = hashlib.sha256(GET_CALLER_IDENTITY_BODY.encode()).hexdigest()
    if claimed is not None and claimed != expected:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "x-amz-content-sha256 is not the body's")
    return None


def _signed_at(value: str, auth: _Authorization, rules: ProofRules,
               now: datetime) -> datetime | Deny:
    try:
        if not _AMZ_DATE_SHAPE.fullmatch(value):
            raise ValueError(value)
        signed_at = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]),
                             int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC)
    except ValueError:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "x-amz-date is not YYYYMMDDTHHMMSSZ")
    if value[:8] != auth.date:
        return Deny(DenyReason.STS_REQUEST_MALFORMED, "x-amz-date and credential date differ")
    if now - signed_at > rules.max_age:
        return Deny(DenyReason.STS_REQUEST_STALE, f"signed {now - signed_at} ago")
    if signed_at - now > rules.clock_skew:
        return Deny(DenyReason.STS_REQUEST_STALE, f"signed {signed_at - now} in the future")
    return signed_at


def _fingerprint(access_key_id: str) -> str:
    return "sha256:" + hashlib.sha256(access_key_id.encode()).hexdigest()[:16]
