"""User JWT claims: explicit permissions, explicit limits, exp never beyond the identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authsvc.domain import (
    Deny,
    DenyReason,
    Grant,
    Identity,
    IdentitySource,
    Limits,
    Permissions,
    ResponsePermission,
    SubjectPermission,
)
from authsvc.minting import AccountKey, Lifetime, MintedJwt, Minter, Mode, user_claims
from authsvc.minting.claims import expiry
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
USER = KeyPair.create(Prefix.USER).public_key
ID = Identity(source=IdentitySource.NKEY, principal="nkey:U1", subject="U1")


def grant(**kw: object) -> Grant:
    base: dict[str, object] = {"account": "APP", "permissions": Permissions(
        pub=SubjectPermission(allow=("a.b",)), sub=SubjectPermission(allow=("c.>",),
                                                                     deny=("c.x",)))}
    base.update(kw)
    return Grant(**base)  # type: ignore[arg-type]


def claims_for(g: Grant, **kw: object) -> dict[str, object]:
    args: dict[str, object] = {"grant": g, "user_nkey": USER, "name": "n", "now": NOW,
                               "expires_at": NOW + timedelta(minutes=5), "audience": "APP",
                               "issuer_account": None}
    args.update(kw)
    return user_claims(**args)  # type: ignore[arg-type]


def test_nothing_allowed_is_written_as_deny_everything() -> None:
    nats = claims_for(grant(permissions=Permissions()))["nats"]
    assert nats["pub"] == {"allow": [], "deny": [">"]}  # type: ignore[index]
    assert nats["sub"] == {"allow": [], "deny": [">"]}  # type: ignore[index]


def test_permissions_and_limits_are_explicit() -> None:
    nats = claims_for(grant(limits=Limits(subs=10)))["nats"]
    assert nats["pub"] == {"allow": ["a.b"], "deny": []}  # type: ignore[index]
    assert nats["sub"] == {"allow": ["c.>"], "deny": ["c.x"]}  # type: ignore[index]
    assert (nats["subs"], nats["data"], nats["payload"]) == (10, -1, -1)  # type: ignore[index]
    assert "resp" not in nats  # type: ignore[operator]
    assert nats["type"] == "user" and nats["version"] == 2  # type: ignore[index]


def test_resp_only_when_granted_in_nanoseconds() -> None:
    g = grant(permissions=Permissions(resp=ResponsePermission(max_msgs=3,
                                                              ttl=timedelta(seconds=2))))
    assert claims_for(g)["nats"]["resp"] == {"max": 3, "ttl": 2_000_000_000}  # type: ignore[index]


def test_config_mode_sets_aud_and_no_issuer_account() -> None:
    claims = claims_for(grant())
    assert claims["aud"] == "APP"
    assert "issuer_account" not in claims["nats"]  # type: ignore[operator]


@pytest.mark.parametrize(("ttl", "identity_exp", "max_ttl", "want"), [
    (timedelta(hours=1), None, timedelta(hours=12), timedelta(hours=1)),
    (timedelta(hours=1), NOW + timedelta(minutes=10), timedelta(hours=12), timedelta(minutes=10)),
    (timedelta(hours=24), None, timedelta(hours=2), timedelta(hours=2)),
])
def test_expiry_is_the_smallest_bound(ttl: timedelta, identity_exp: datetime | None,
                                      max_ttl: timedelta, want: timedelta) -> None:
    identity = Identity(source=IdentitySource.OIDC, principal="p", subject="s",
                        expires_at=identity_exp)
    got = expiry(grant=grant(ttl=ttl), identity=identity, now=NOW,
                 lifetime=Lifetime(max_ttl=max_ttl))
    assert got == NOW + want


def test_jitter_is_subtracted_but_at_most_a_tenth() -> None:
    lifetime = Lifetime(max_ttl=timedelta(hours=12), jitter=timedelta(minutes=30))
    got = expiry(grant=grant(ttl=timedelta(minutes=10)), identity=ID, now=NOW, lifetime=lifetime)
    assert got == NOW + timedelta(minutes=9)


def test_config_minter_signs_with_the_issuer() -> None:
    issuer = KeyPair.create(Prefix.ACCOUNT)
    minter = Minter(mode=Mode.CONFIG, issuer=issuer, lifetime=Lifetime(timedelta(hours=1)))
    minted = minter.mint(grant=grant(), identity=ID, user_nkey=USER, now=NOW)
    assert isinstance(minted, MintedJwt)
    claims = jwt.decode(minted.token)
    assert claims["iss"] == issuer.public_key
    assert claims["jti"] == minted.jti
    # The audit record's jwt.exp is minted.expires_at: exactly the token's exp.
    assert claims["exp"] == minted.expires_at.timestamp()


@pytest.mark.parametrize("spread", [0.0, 0.37, 0.999])
def test_the_recorded_expiry_is_the_tokens_and_never_past_the_identity(spread: float) -> None:
    identity = Identity(source=IdentitySource.OIDC, principal="p", subject="s",
                        expires_at=NOW + timedelta(minutes=5, microseconds=700_000))
    minter = Minter(mode=Mode.CONFIG, issuer=KeyPair.create(Prefix.ACCOUNT),
                    lifetime=Lifetime(timedelta(hours=1), jitter=timedelta(seconds=7)),
                    spread=lambda: spread)
    minted = minter.mint(grant=grant(), identity=identity, user_nkey=USER, now=NOW)
    assert isinstance(minted, MintedJwt)
    assert jwt.decode(minted.token)["exp"] == minted.expires_at.timestamp()
    assert identity.expires_at is not None and minted.expires_at <= identity.expires_at


def test_operator_minter_uses_the_account_signing_key() -> None:
    account, signing = KeyPair.create(Prefix.ACCOUNT), KeyPair.create(Prefix.ACCOUNT)
    minter = Minter(mode=Mode.OPERATOR, issuer=KeyPair.create(Prefix.ACCOUNT),
                    lifetime=Lifetime(timedelta(hours=1)),
                    accounts={"APP": AccountKey(public_key=account.public_key,
                                                signing_key=signing)})
    minted = minter.mint(grant=grant(), identity=ID, user_nkey=USER, now=NOW)
    assert isinstance(minted, MintedJwt)
    claims = jwt.decode(minted.token)
    assert claims["iss"] == signing.public_key
    assert claims["nats"]["issuer_account"] == account.public_key
    assert "aud" not in claims
    unknown = minter.mint(grant=grant(account="OTHER"), identity=ID, user_nkey=USER, now=NOW)
    assert isinstance(unknown, Deny) and unknown.reason == DenyReason.ACCOUNT_UNKNOWN


def test_identity_about_to_expire_gets_no_grant() -> None:
    identity = Identity(source=IdentitySource.OIDC, principal="p", subject="s",
                        expires_at=NOW + timedelta(milliseconds=500))
    minter = Minter(mode=Mode.CONFIG, issuer=KeyPair.create(Prefix.ACCOUNT),
                    lifetime=Lifetime(timedelta(hours=1)))
    result = minter.mint(grant=grant(), identity=identity, user_nkey=USER, now=NOW)
    assert isinstance(result, Deny) and result.reason == DenyReason.GRANT_TOO_SHORT


@pytest.mark.parametrize(("spread", "want_minutes"), [(0.0, 10.0), (0.5, 9.5), (1.0, 9.0)])
def test_jitter_is_drawn_per_mint(spread: float, want_minutes: float) -> None:
    lifetime = Lifetime(max_ttl=timedelta(hours=12), jitter=timedelta(minutes=1))
    got = expiry(grant=grant(ttl=timedelta(minutes=10)), identity=ID, now=NOW, lifetime=lifetime,
                 spread=spread)
    assert got == NOW + timedelta(minutes=want_minutes)
