"""Who signs what, in each deployment mode.

Config mode: the single ``issuer`` account key signs the response and every user JWT; the
user JWT's ``aud`` names the target account and ``issuer_account`` is forbidden.
Operator mode: user JWTs are signed by the *target* account's signing key and carry
``issuer_account``; the response is signed by the callout account key.
(nats-server ``server/auth_callout.go``, the checks on the response and its user JWT.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from authsvc.domain import Deny, DenyReason, Grant, Identity
from authsvc.minting.claims import Lifetime, expiry, user_claims
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair

MIN_LIFETIME_SECONDS = 1


class Mode(StrEnum):
    CONFIG = "config"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class AccountKey:
    """Operator mode: the target account's public key and the signing key we hold for it."""

    public_key: str
    signing_key: KeyPair


@dataclass(frozen=True, slots=True)
class MintedJwt:
    token: str = field(repr=False)
    jti: str
    expires_at: datetime


class Minter:
    """Turns an Allow's Grant into a signed user JWT for one connect."""

    def __init__(
        self,
        *,
        mode: Mode,
        issuer: KeyPair,
        lifetime: Lifetime,
        accounts: Mapping[str, AccountKey] | None = None,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.mode = mode
        self.issuer = issuer
        self.lifetime = lifetime
        self._accounts = dict(accounts or {})
        self._spread = spread  # jitter draw; not security relevant, so not a CSPRNG

    def mint(
        self, *, grant: Grant, identity: Identity, user_nkey: str, now: datetime
    ) -> MintedJwt | Deny:
        # Whole seconds, as the JWT's exp is written: the audit record's jwt.exp is the
        # token's own (rounded down, so never past the identity's expiry).
        exp = expiry(grant=grant, identity=identity, now=now, lifetime=self.lifetime,
                     spread=self._spread()).replace(microsecond=0)
        if (exp - now).total_seconds() < MIN_LIFETIME_SECONDS:
            return Deny(DenyReason.GRANT_TOO_SHORT, "identity expires before a usable grant")
        if self.mode is Mode.CONFIG:
            signer, audience, issuer_account = self.issuer, grant.account, None
        else:
            account = self._accounts.get(grant.account)
            if account is None:
                return Deny(DenyReason.ACCOUNT_UNKNOWN, f"no signing key for {grant.account!r}")
            signer, audience, issuer_account = account.signing_key, None, account.public_key
        claims = user_claims(
            grant=grant, user_nkey=user_nkey, name=identity.principal, now=now,
            expires_at=exp, audience=audience, issuer_account=issuer_account,
        )
        token, jti = jwt.encode_with_id(claims, signer)
        return MintedJwt(token=token, jti=jti, expires_at=exp)
