"""OIDC verifier with static keys: the happy path and the attack matrix, one code each."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    Secret,
    ServerInfo,
)
from authsvc.identity import VerifierRegistry
from authsvc.identity.claims import ClaimRules, ClaimType
from authsvc.identity.jwk import import_key_set
from authsvc.identity.jwks import StaticKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from tests.support.idp import SigningKey, b64url, forge, mint

ISS = "https://idp.example.com"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
RSA = SigningKey.rsa("rsa-1")
EC = SigningKey.ec("ec-1")
WEAK = SigningKey.rsa("weak-1", bits=1024)
GOOD = {"iss": ISS, "sub": "alice", "aud": "nats", "iat": T - 10, "exp": T + 300,
        "groups": ["ops", "dev"], "email": "a@example.com", "jti": "j-1"}


def issuer(**rules: Any) -> OidcIssuer:
    keys = import_key_set([RSA.jwk(), EC.jwk(), WEAK.jwk()])
    return OidcIssuer(
        rules=ClaimRules(issuer=ISS, audiences=frozenset({"nats"}), **rules),
        algorithms=frozenset({"RS256", "ES256"}), keys=StaticKeys(keys),
        claims={"groups": ClaimType.STRINGS, "email": ClaimType.STRING},
        mutable=frozenset({"email", "groups"}))


def request(token: str = "", password: str = "") -> ConnectRequest:
    return ConnectRequest(
        server=ServerInfo(id="N1"), user_nkey="U2", client=ClientInfo(),
        connect=ConnectOptions(auth_token=Secret(token) if token else None,
                               password=Secret(password) if password else None),
        request_id="r", issued_at=NOW, expires_at=NOW)


async def verify(token: str, **rules: Any) -> Identity | Deny | None:
    return await OidcVerifier([issuer(**rules)]).verify(request(token), now=NOW)


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
async def test_valid_token_gives_issuer_scoped_identity(key: SigningKey) -> None:
    result = await verify(mint(key, GOOD))
    assert isinstance(result, Identity)
    assert result.principal == f"oidc:{ISS}#alice"
    assert (result.subject, result.issuer) == ("alice", ISS)
    assert result.expires_at == datetime.fromtimestamp(T + 300, tz=UTC)
    assert result.attributes["groups"] == ("ops", "dev")
    assert result.attributes["aud"] == ("nats",)
    assert result.attributes["jti"] == "j-1"
    assert result.attributes["mutable_claims"] == ("email", "groups")


async def test_token_in_password_field() -> None:
    verifier = OidcVerifier([issuer()])
    result = await verifier.verify(request(password=mint(RSA, GOOD)), now=NOW)
    assert isinstance(result, Identity)


async def test_no_token_is_not_ours() -> None:
    assert await OidcVerifier([issuer()]).verify(request(), now=NOW) is None


def _hs256_with_public_pem() -> str:
    pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = forge({"alg": "HS256", "kid": "rsa-1"}, GOOD).rsplit(".", 1)[0]
    return unsigned + "." + b64url(hmac.new(pem, unsigned.encode(), hashlib.sha256).digest())


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {**GOOD, **changes}
    return {k: v for k, v in claims.items() if v is not None}


ATTACKS: list[tuple[str, str, DenyReason]] = [
    ("alg-none", forge({"alg": "none"}, GOOD), DenyReason.TOKEN_ALG_NOT_ALLOWED),
    ("hs256-public-key", _hs256_with_public_pem(), DenyReason.TOKEN_ALG_NOT_ALLOWED),
    ("alg-not-in-issuer-list", mint(SigningKey.rsa("rsa-1", alg="PS256"), GOOD),
     DenyReason.TOKEN_ALG_NOT_ALLOWED),
    ("aud-missing", mint(RSA, _claims(aud=None)), DenyReason.TOKEN_AUDIENCE_MISMATCH),
    ("aud-wrong", mint(RSA, _claims(aud=["kubernetes"])), DenyReason.TOKEN_AUDIENCE_MISMATCH),
    ("iss-prefix", mint(RSA, _claims(iss=ISS + ".evil")), DenyReason.ISSUER_UNKNOWN),
    ("iss-trailing-slash", mint(RSA, _claims(iss=ISS + "/")), DenyReason.ISSUER_UNKNOWN),
    ("iss-not-string", mint(RSA, _claims(iss=[ISS])), DenyReason.ISSUER_UNKNOWN),
    ("expired", mint(RSA, _claims(iat=T - 700, exp=T - 61)), DenyReason.TOKEN_EXPIRED),
    ("nbf-future", mint(RSA, _claims(nbf=T + 61)), DenyReason.TOKEN_NOT_YET_VALID),
    ("iat-future", mint(RSA, _claims(iat=T + 61, exp=T + 400)),
     DenyReason.TOKEN_NOT_YET_VALID),
    ("lifetime", mint(RSA, _claims(exp=T + 2 * 86400)), DenyReason.TOKEN_LIFETIME_TOO_LONG),
    ("exp-missing", mint(RSA, _claims(exp=None)), DenyReason.TOKEN_CLAIM_MISSING),
    ("sub-missing", mint(RSA, _claims(sub=None)), DenyReason.TOKEN_CLAIM_MISSING),
    ("exp-string", mint(RSA, _claims(exp="soon")), DenyReason.TOKEN_CLAIM_INVALID),
    ("crit", mint(RSA, GOOD, {"crit": ["exp"], "exp": 1}), DenyReason.TOKEN_CRIT_UNSUPPORTED),
    ("jku", mint(RSA, GOOD, {"jku": "https://evil/jwks"}), DenyReason.TOKEN_HEADER_FORBIDDEN),
    ("x5u", mint(RSA, GOOD, {"x5u": "https://evil/cert"}), DenyReason.TOKEN_HEADER_FORBIDDEN),
    ("jwk", mint(RSA, GOOD, {"jwk": RSA.jwk()}), DenyReason.TOKEN_HEADER_FORBIDDEN),
    ("kid-unknown", mint(SigningKey.rsa("other"), GOOD), DenyReason.TOKEN_KID_UNKNOWN),
    ("ecdsa-r-s-zero", forge({"alg": "ES256", "kid": "ec-1"}, GOOD, bytes(64)),
     DenyReason.TOKEN_SIGNATURE_INVALID),
    ("signed-by-other-key", mint(SigningKey.rsa("other-2"), GOOD, {"kid": "rsa-1"}),
     DenyReason.TOKEN_SIGNATURE_INVALID),
    ("rsa-1024", mint(WEAK, GOOD), DenyReason.KEY_TOO_WEAK),
    ("oversized", mint(RSA, _claims(pad="x" * 9000)), DenyReason.TOKEN_TOO_LARGE),
    ("garbage-base64", "eyJ!!.e30.AAAA", DenyReason.TOKEN_MALFORMED),
    ("padded-base64", mint(RSA, GOOD) + "=", DenyReason.TOKEN_MALFORMED),
    ("jwe-five-parts", "a.b.c.d.e", DenyReason.TOKEN_MALFORMED),
    ("not-json", "bm90.anNvbg.AAAA", DenyReason.TOKEN_MALFORMED),
    ("duplicate-claim", forge({"alg": "RS256"}, GOOD).replace(
        forge({}, GOOD).split(".")[1],
        b64url(b'{"iss":"x","iss":"' + ISS.encode() + b'"}')), DenyReason.TOKEN_MALFORMED),
    ("empty-signature", forge({"alg": "RS256", "kid": "rsa-1"}, GOOD),
     DenyReason.TOKEN_SIGNATURE_INVALID),
    ("groups-not-strings", mint(RSA, _claims(groups=[1, 2])), DenyReason.TOKEN_CLAIM_INVALID),
    # Python's json reads NaN, Infinity and 1e999; such an exp would never expire.
    ("exp-nan", mint(RSA, _claims(exp=float("nan"))), DenyReason.TOKEN_CLAIM_INVALID),
    ("exp-infinity", mint(RSA, _claims(exp=float("inf"))), DenyReason.TOKEN_CLAIM_INVALID),
    ("nbf-minus-infinity", mint(RSA, _claims(nbf=float("-inf"))),
     DenyReason.TOKEN_CLAIM_INVALID),
    ("exp-beyond-float", mint(RSA, _claims(exp=10**400)), DenyReason.TOKEN_CLAIM_INVALID),
    ("nested-duplicate", forge({"alg": "RS256"}, GOOD).replace(
        forge({}, GOOD).split(".")[1],
        b64url(b'{"iss":"' + ISS.encode() + b'","x":{"a":1,"a":2}}')),
     DenyReason.TOKEN_MALFORMED),
    ("not-ascii", mint(RSA, GOOD)[:-1] + "\u00e9", DenyReason.TOKEN_MALFORMED),
    ("standard-base64-alphabet", mint(RSA, GOOD)[:-1] + "+", DenyReason.TOKEN_MALFORMED),
    ("one-character-signature", forge({"alg": "RS256", "kid": "rsa-1"}, GOOD) + "A",
     DenyReason.TOKEN_MALFORMED),
]


@pytest.mark.parametrize(("token", "reason"), [(t, r) for _, t, r in ATTACKS],
                         ids=[name for name, _, _ in ATTACKS])
async def test_attack_is_refused_with_its_code(token: str, reason: DenyReason) -> None:
    result = await verify(token)
    assert isinstance(result, Deny), result
    assert result.reason is reason, result.detail


async def test_typ_is_checked_when_configured() -> None:
    types = frozenset({"at+jwt"})
    assert isinstance(await verify(mint(RSA, GOOD, {"typ": "application/AT+JWT"}),
                                   types=types), Identity)
    refused = await verify(mint(RSA, GOOD, {"typ": "JWT"}), types=types)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_TYPE_MISMATCH


async def test_leeway_admits_small_skew() -> None:
    token = mint(RSA, _claims(iat=T + 30, nbf=T + 30, exp=T + 300))
    assert isinstance(await verify(token), Identity)
    assert isinstance(await verify(token, leeway=timedelta(0)), Deny)


@pytest.mark.parametrize(("exp", "code"), [
    (T, DenyReason.IDENTITY_EXPIRED),         # exp == now: within the leeway, still no grant
    (T - 30, DenyReason.IDENTITY_EXPIRED),    # past exp, within the 60 s leeway
    (T - 60, DenyReason.TOKEN_EXPIRED),       # exp + leeway reached
])
async def test_leeway_on_exp_never_admits(exp: int, code: DenyReason) -> None:
    token = mint(RSA, _claims(iat=T - 600, exp=exp))
    registry = VerifierRegistry([OidcVerifier([issuer()])])
    refused = await registry.verify(request(token), now=NOW)
    assert isinstance(refused, Deny) and refused.reason is code


# Past 9999-12-31T23:59:59Z datetime.fromtimestamp raises: each connect would be a fault
# (internal_error and a traceback) for an issuer with max_lifetime: null, not a refusal.
@pytest.mark.parametrize("changes", [
    {"exp": (T + 300) * 1000},       # milliseconds: year 58000
    {"exp": 253402300800},           # 10000-01-01T00:00:00Z
    {"exp": 253402300799.9999999},   # rounds up to year 10000
    {"exp": 2**53},
    {"nbf": 2**53},
    {"iat": -62135596801},           # before year 1
    {"iat": -1},
], ids=["exp-ms", "exp-year-10000", "exp-rounds-to-10000", "exp-2^53", "nbf-2^53",
        "iat-year-0", "iat-before-1970"])
async def test_time_no_date_can_hold_is_invalid(changes: dict[str, Any]) -> None:
    refused = await verify(mint(RSA, {**GOOD, **changes}), max_lifetime=None)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_CLAIM_INVALID


async def test_last_second_of_9999_is_a_time() -> None:
    accepted = await verify(mint(RSA, _claims(exp=253402300799)), max_lifetime=None)
    assert isinstance(accepted, Identity)
    assert accepted.expires_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("nulls", [{"iat": None}, {"jti": None}, {"iat": None, "jti": None}],
                         ids=["iat", "jti", "both"])
async def test_null_does_not_satisfy_a_required_claim(nulls: dict[str, Any]) -> None:
    refused = await verify(mint(RSA, {**GOOD, **nulls}), required=("iat", "jti"))
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_CLAIM_MISSING


async def test_no_bound_audience_refuses_a_token_that_has_one() -> None:
    verifier = OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=ISS, audiences=frozenset()),
        algorithms=frozenset({"RS256"}), keys=StaticKeys(import_key_set([RSA.jwk()])))])
    refused = await verifier.verify(request(mint(RSA, GOOD)), now=NOW)
    assert isinstance(refused, Deny) and refused.reason is DenyReason.TOKEN_AUDIENCE_MISMATCH
    accepted = await verifier.verify(request(mint(RSA, _claims(aud=None))), now=NOW)
    assert isinstance(accepted, Identity)


async def test_token_without_kid_tries_every_key() -> None:
    nameless = SigningKey.rsa(None)
    verifier = OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=ISS, audiences=frozenset({"nats"})),
        algorithms=frozenset({"RS256"}),
        keys=StaticKeys(import_key_set([RSA.jwk(), nameless.jwk()])))])
    assert isinstance(await verifier.verify(request(mint(nameless, GOOD)), now=NOW), Identity)


def test_attack_matrix_is_fast() -> None:
    # Refusals must cost microseconds, not milliseconds: they are what an attacker sends.
    import asyncio

    async def run() -> float:
        verifier = OidcVerifier([issuer()])
        tokens = [t for _, t, _ in ATTACKS]
        started = time.perf_counter()
        for token in tokens * 20:
            await verifier.verify(request(token), now=NOW)
        return (time.perf_counter() - started) / (len(tokens) * 20)

    assert asyncio.run(run()) < 0.005
