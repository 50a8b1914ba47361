"""Grant + request + identity -> NATS user JWT claims. Pure.

Rules (nats-server ``server/auth_callout.go`` and what it honours, checked in
tests/integration):
* ``sub`` is the per-connection ``user_nkey`` the server generated; anything else is rejected.
* Permissions are always explicit. A user JWT with no permissions gets the account defaults,
  i.e. full access, so an empty allow list is written as ``deny: [">"]``.
* Limits are written explicitly, -1 where unlimited.
* ``resp`` only when granted.
* ``exp`` never outlives the identity proof, the grant TTL or the global ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authsvc.domain import Grant, Identity, Permissions, SubjectPermission

_NS_PER_SECOND = 1_000_000_000
MAX_NAME_CHARS = 256


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Clamps a grant's lifetime. ``jitter`` is subtracted so reconnects of a fleet spread out."""

    max_ttl: timedelta
    jitter: timedelta = timedelta(0)


def expiry(*, grant: Grant, identity: Identity, now: datetime, lifetime: Lifetime,
           spread: float = 1.0) -> datetime:
    """min(grant TTL, global max TTL, identity expiry) minus ``spread`` (0..1) of the jitter,
    never more than a tenth of the lifetime. The caller draws ``spread`` at random."""
    end = now + min(grant.ttl, lifetime.max_ttl)
    if identity.expires_at is not None:
        end = min(end, identity.expires_at)
    span = end - now
    return end - min(lifetime.jitter * min(max(spread, 0.0), 1.0), span / 10)


def _subject_block(rule: SubjectPermission) -> dict[str, list[str]]:
    if not rule.allow:
        # Empty allow would mean "everything" to nats-server; say "nothing" explicitly.
        return {"allow": [], "deny": [">"]}
    return {"allow": list(rule.allow), "deny": list(rule.deny)}


def permission_claims(permissions: Permissions) -> dict[str, Any]:
    """The ``pub``/``sub``/``resp`` part of the user claims, as the server reads it."""
    out: dict[str, Any] = {
        "pub": _subject_block(permissions.pub),
        "sub": _subject_block(permissions.sub),
    }
    if permissions.resp is not None:
        out["resp"] = {
            "max": permissions.resp.max_msgs,
            "ttl": int(permissions.resp.ttl.total_seconds() * _NS_PER_SECOND),
        }
    return out


def user_claims(
    *,
    grant: Grant,
    user_nkey: str,
    name: str,
    now: datetime,
    expires_at: datetime,
    audience: str | None,
    issuer_account: str | None,
) -> dict[str, Any]:
    """Claims of the user JWT. Config mode passes ``audience`` (target account name);
    operator mode passes ``issuer_account`` (target account public key)."""
    nats: dict[str, Any] = permission_claims(grant.permissions)
    nats.update(
        subs=grant.limits.subs,
        data=grant.limits.data,
        payload=grant.limits.payload,
        type="user",
        version=2,
    )
    if issuer_account:
        nats["issuer_account"] = issuer_account
    claims: dict[str, Any] = {
        "sub": user_nkey,
        "name": name[:MAX_NAME_CHARS],
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "nats": nats,
    }
    if audience:
        claims["aud"] = audience
    return claims
