"""Claim rules for a signature-verified JWT (RFC 7519 4.1, OIDC Core 3.1.3.7). Pure.

Kept apart from signature checks, as vault-plugin-auth-jwt keeps ``claims.go`` apart from
its login path. Every rule takes the claims and ``now`` and returns a ``Deny`` or None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from authsvc.domain import AttributeValue, Deny, DenyReason

# The NumericDates (RFC 7519 2) accepted in exp, nbf and iat: 1970-01-01 to
# 9999-12-31T23:59:59Z. Past 9999 ``datetime.fromtimestamp`` raises (an exp in milliseconds
# is already year 58000), and before 1970 some platforms' does; either would turn the
# connect into a fault instead of a refusal. protocol.request_fields bounds its times alike.
_LATEST = 253402300799


class ClaimType(StrEnum):
    """Declared type of a claim copied into ``Identity.attributes``."""

    STRING = "string"
    STRINGS = "strings"  # a list of strings; a lone string becomes a one-element list
    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What one issuer's tokens must satisfy besides a good signature.

    ``audiences`` empty means the issuer binds no audience: then a token that *carries*
    ``aud`` is refused (Vault >= 1.17), since it was meant for someone else.
    ``types`` empty means any ``typ``; otherwise the header ``typ`` must be one of them,
    compared as RFC 7515 4.1.9 says (case-insensitive, ``application/`` optional).
    ``empty_sub_allowed`` accepts ``sub: ""``, which Cloudflare Access sends for service
    tokens; the provider profile then names the subject (``sub`` must still be a string).
    """

    issuer: str
    audiences: frozenset[str]
    leeway: timedelta = timedelta(seconds=60)
    max_lifetime: timedelta | None = timedelta(hours=24)
    required: tuple[str, ...] = ("iat",)
    types: frozenset[str] = frozenset()
    empty_sub_allowed: bool = False


def _number(value: object) -> float | None:
    """A JSON number as a finite float; None for anything else (bools, strings, NaN, inf).

    Python's json reads ``NaN``, ``Infinity`` and ``1e999``; an ``exp`` of NaN or infinity
    would compare as never expired, so they are not numbers here (RFC 8259 6 has no such
    values). An integer too large for a float is refused the same way.
    """
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    if type(value) is float:
        return value if math.isfinite(value) else None
    return None


def _iso(seconds: float) -> str:
    """A Unix time for a deny detail, e.g. ``2026-03-02T10:00:00Z``."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f}"


def _media_type(typ: str) -> str:
    lowered = typ.lower()
    return lowered.removeprefix("application/")


def _time_claims(claims: Mapping[str, Any], rules: ClaimRules, at: float) -> Deny | None:
    raw_exp, raw_nbf, raw_iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    exp, nbf, iat = _number(raw_exp), _number(raw_nbf), _number(raw_iat)
    if (exp is None and raw_exp is not None) or (nbf is None and raw_nbf is not None) or (
            iat is None and raw_iat is not None):
        return Deny(DenyReason.TOKEN_CLAIM_INVALID, "exp, nbf or iat is not a number")
    if any(value is not None and not 0 <= value <= _LATEST for value in (exp, nbf, iat)):
        return Deny(DenyReason.TOKEN_CLAIM_INVALID,
                    "exp, nbf or iat is not a time between 1970 and 9999 in seconds")
    if exp is None:
        return Deny(DenyReason.TOKEN_CLAIM_MISSING, "exp is required")
    leeway = rules.leeway.total_seconds()
    if at >= exp + leeway:
        return Deny(DenyReason.TOKEN_EXPIRED, f"exp {_iso(exp)} has passed at {_iso(at)} "
                    f"(leeway {int(leeway)}s)")
    # An iat in the future is refused like an nbf.
    for name, value in (("nbf", nbf), ("iat", iat)):
        if value is not None and at + leeway < value:
            return Deny(DenyReason.TOKEN_NOT_YET_VALID, f"{name} {_iso(value)} is after "
                        f"{_iso(at)} (leeway {int(leeway)}s)")
    if rules.max_lifetime is not None:
        lifetime = exp - (iat if iat is not None else at)
        if lifetime > rules.max_lifetime.total_seconds():
            return Deny(DenyReason.TOKEN_LIFETIME_TOO_LONG,
                        f"lifetime {int(lifetime)}s > {int(rules.max_lifetime.total_seconds())}s")
    return None


def _audience(claims: Mapping[str, Any], rules: ClaimRules) -> Deny | None:
    aud = claims.get("aud")
    if aud is None:
        if rules.audiences:
            return Deny(DenyReason.TOKEN_AUDIENCE_MISMATCH, "no configured audience in aud")
        return None
    values = (aud,) if type(aud) is str else aud
    if (type(values) is not list and type(values) is not tuple) or \
            not all(type(v) is str for v in values):
        return Deny(DenyReason.TOKEN_CLAIM_INVALID, "aud is not a string or list of strings")
    if not rules.audiences:
        return Deny(DenyReason.TOKEN_AUDIENCE_MISMATCH, "token has aud, issuer binds none")
    if rules.audiences.isdisjoint(values):
        return Deny(DenyReason.TOKEN_AUDIENCE_MISMATCH, "no configured audience in aud")
    return None


def check_claims(claims: Mapping[str, Any], typ: str | None, rules: ClaimRules,
                 now: datetime) -> Deny | None:
    """Refuse the token unless issuer, subject, times, audience, type and required hold."""
    if claims.get("iss") != rules.issuer:
        return Deny(DenyReason.ISSUER_UNKNOWN, "iss differs from the routed issuer")
    sub = claims.get("sub")
    if type(sub) is not str or not (sub or rules.empty_sub_allowed):
        return Deny(DenyReason.TOKEN_CLAIM_MISSING, "sub must be a non-empty string")
    if rules.types and (typ is None or _media_type(typ) not in rules.types):
        return Deny(DenyReason.TOKEN_TYPE_MISMATCH, f"typ {str(typ)[:32]!r} not accepted")
    # A claim set to JSON null is missing: ``iat: null`` must not satisfy ``required: [iat]``
    # and then leave the lifetime counted from now, as an absent iat is.
    missing = [name for name in rules.required if claims.get(name) is None]
    if missing:
        return Deny(DenyReason.TOKEN_CLAIM_MISSING, f"required claims missing: {missing}")
    return _time_claims(claims, rules, now.timestamp()) or _audience(claims, rules)


def normalise_type(typ: str) -> str:
    """The comparison form of a configured ``typ`` (``application/at+JWT`` -> ``at+jwt``)."""
    return _media_type(typ)


def convert(value: object, kind: ClaimType) -> AttributeValue | None:
    """The claim as its declared type, or None when it does not have that type."""
    if kind is ClaimType.STRING:
        return value if isinstance(value, str) else None
    if kind is ClaimType.BOOL:
        return value if isinstance(value, bool) else None
    if kind is ClaimType.INT:
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and all(isinstance(v, str) for v in items):
        return tuple(items)
    return None


def validity(claims: Mapping[str, Any]) -> tuple[float, float | None]:
    """``exp``, and the later of ``nbf`` and ``iat`` if either is present (after
    ``check_claims``), in seconds since the epoch."""
    nbf, iat = _number(claims.get("nbf")), _number(claims.get("iat"))
    start = iat if nbf is None else nbf if iat is None else max(nbf, iat)
    return float(claims["exp"]), start


def expiry(claims: Mapping[str, Any]) -> datetime:
    """``exp`` as an aware datetime (call after ``check_claims``)."""
    return datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
