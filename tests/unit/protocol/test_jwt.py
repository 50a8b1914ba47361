from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from authsvc.protocol import jwt
from authsvc.protocol.jwt import JwtError, JwtErrorKind
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.xkeys import CurveKeyPair
from tests.unit.protocol.vectors import load

TOKENS = load("published_tokens.json")
ADR26 = load("adr26_request.json")
V2_HEADER_B64 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"

ACCOUNT = KeyPair.create(Prefix.ACCOUNT)
SERVER = KeyPair.create(Prefix.SERVER)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: dict[str, Any] | str, claims: dict[str, Any] | str, key: KeyPair) -> str:
    """Hand-rolled token, for shapes ``jwt.encode`` refuses to produce."""
    h = header if isinstance(header, str) else b64(json.dumps(header).encode())
    p = claims if isinstance(claims, str) else b64(json.dumps(claims).encode())
    return f"{h}.{p}.{b64(key.sign(f'{h}.{p}'.encode()))}"


def v2_claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "UX", "iat": 1700000000, "nats": {"type": "user", "version": 2}} | extra


# --- published vectors -------------------------------------------------------------------


def test_adr26_jti_is_reproduced() -> None:
    assert jwt.compute_jti(ADR26["claims"]) == ADR26["expected_jti"]


def test_jti_ignores_the_nats_object() -> None:
    # ClaimsData.hash() in jwt v2 marshals only ClaimsData.
    claims = dict(ADR26["claims"])
    claims["nats"] = {"anything": "else"}
    assert jwt.compute_jti(claims) == ADR26["expected_jti"]


def test_published_v2_token_decodes_and_verifies() -> None:
    vector = TOKENS["v2_user"]
    claims = jwt.decode(vector["token"])
    for name, value in vector["expected"].items():
        assert claims[name] == value
    assert claims["nats"]["version"] == 2
    assert jwt.compute_jti(claims) == vector["expected"]["jti"]


def test_published_v2_token_with_one_flipped_signature_bit_fails() -> None:
    token = TOKENS["v2_user"]["token"]
    head, _, sig = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[5] ^= 1
    with pytest.raises(JwtError) as info:
        jwt.decode(f"{head}.{b64(bytes(raw))}")
    assert info.value.kind is JwtErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("name", ["v1_user", "v1_operator"])
def test_published_v1_tokens_are_refused(name: str) -> None:
    with pytest.raises(JwtError) as info:
        jwt.decode(TOKENS[name]["token"])
    # Their header is {"typ":"jwt","alg":"ed25519"}: refused before the version is looked at.
    assert info.value.kind is JwtErrorKind.UNSUPPORTED_HEADER


@pytest.mark.parametrize("name", ["v1_user", "v1_operator"])
def test_v1_payload_under_a_v2_header_is_an_unsupported_version(name: str) -> None:
    _, payload, sig = TOKENS[name]["token"].split(".")
    with pytest.raises(JwtError) as info:
        jwt.decode(f"{V2_HEADER_B64}.{payload}.{sig}")
    assert info.value.kind is JwtErrorKind.UNSUPPORTED_VERSION


# --- encode -------------------------------------------------------------------------------


def test_round_trip_and_exact_header() -> None:
    token = jwt.encode(v2_claims(aud="APP", exp=1700000100), ACCOUNT)
    assert token.split(".")[0] == V2_HEADER_B64
    header, _ = jwt.decode_unverified(token)
    assert header == {"typ": "JWT", "alg": "ed25519-nkey"}
    claims = jwt.decode(token)
    assert claims["iss"] == ACCOUNT.public_key
    assert claims["jti"] == jwt.compute_jti(claims)
    assert claims["nats"] == {"type": "user", "version": 2}


def test_payload_is_go_struct_order_with_omitempty() -> None:
    claims = {"nats": {"version": 2}, "sub": "S", "name": "", "nbf": 0, "aud": "A", "iat": 5}
    _, decoded = jwt.decode_unverified(jwt.encode(claims, ACCOUNT))
    assert list(decoded) == ["aud", "jti", "iat", "iss", "sub", "nats"]


def test_signature_covers_header_and_payload() -> None:
    token = jwt.encode(v2_claims(), ACCOUNT)
    header, payload, sig = token.split(".")
    raw_sig = base64.urlsafe_b64decode(sig + "==")
    assert raw_sig == ACCOUNT.sign(f"{header}.{payload}".encode())


def test_encoding_is_deterministic() -> None:
    assert jwt.encode(v2_claims(), ACCOUNT) == jwt.encode(v2_claims(), ACCOUNT)


def test_go_json_escaping_feeds_the_jti() -> None:
    claims = {"iss": ACCOUNT.public_key, "name": "a<b>&c\u2028", "sub": "ü"}
    escaped_name = "a\\u003cb\\u003e\\u0026c\\u2028"
    go_bytes = f'{{"iss":"{ACCOUNT.public_key}","name":"{escaped_name}","sub":"ü"}}'.encode()
    expected = base64.b32encode(hashlib.new("sha512_256", go_bytes).digest()).decode()
    assert jwt.compute_jti(claims) == expected.rstrip("=")
    token = jwt.encode(claims, ACCOUNT)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert b"a\\u003cb\\u003e\\u0026c" in payload
    assert jwt.decode_unverified(token)[1]["name"] == "a<b>&c\u2028"


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"iss": SERVER.public_key}, ValueError),  # iss must be the signer
        ({"jti": "ABC"}, ValueError),  # jti is derived
        ({"exp": 1.5}, TypeError),
        ({"exp": True}, TypeError),
        ({"aud": ["a", "b"]}, TypeError),
        ({"nats": {"x": float("nan")}}, ValueError),
    ],
)
def test_encode_refuses_bad_claims(claims: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        jwt.encode(v2_claims(**claims), ACCOUNT)


# --- decode errors ------------------------------------------------------------------------

GOOD = jwt.encode(v2_claims(), ACCOUNT)
GOOD_H, GOOD_P, GOOD_S = GOOD.split(".")
CURVE_PUBLIC = CurveKeyPair.create().public_key


def with_payload(raw: bytes) -> str:
    return f"{GOOD_H}.{b64(raw)}.{GOOD_S}"


def _kind(token: str | bytes, **kwargs: Any) -> JwtErrorKind:
    with pytest.raises(JwtError) as info:
        jwt.decode(token, **kwargs)
    text = str(info.value)
    assert (token if isinstance(token, str) else token.decode("latin-1")) not in text or not token
    return info.value.kind


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param(f"{GOOD_H}.{GOOD_P}", id="two-parts"),
        pytest.param(f"{GOOD}.x", id="four-parts"),
        pytest.param(f"{GOOD_H}.{GOOD_P}==.{GOOD_S}", id="padded"),
        pytest.param(f"{GOOD_H}.{GOOD_P}!.{GOOD_S}", id="bad-alphabet"),
        pytest.param(f"{GOOD_H}.{GOOD_P[:-3]}.{GOOD_S}", id="truncated-payload"),
        pytest.param(f"{GOOD_H}.{GOOD_P}.{GOOD_S}+/", id="std-alphabet-sig"),
        pytest.param(with_payload(b"[1,2]"), id="payload-array"),
        pytest.param(with_payload(b"{"), id="payload-not-json"),
        pytest.param(with_payload(b'{"a":NaN}'), id="nan"),
        pytest.param(with_payload(b"[" * 100000), id="deep-nesting"),
        pytest.param(with_payload(b"\xff\xfe"), id="not-utf8"),
        pytest.param(f"{b64(b'nope')}.{GOOD_P}.{GOOD_S}", id="header-not-json"),
    ],
)
def test_malformed(token: str) -> None:
    assert _kind(token) is JwtErrorKind.MALFORMED


def test_non_ascii_bytes_are_malformed() -> None:
    assert _kind(GOOD.encode() + "é".encode()) is JwtErrorKind.MALFORMED


def test_too_large_is_checked_first() -> None:
    assert _kind(GOOD, max_size=len(GOOD) - 1) is JwtErrorKind.TOO_LARGE
    assert _kind("x" * (jwt.MAX_TOKEN_SIZE + 1)) is JwtErrorKind.TOO_LARGE
    assert jwt.decode(GOOD, max_size=len(GOOD))["iss"] == ACCOUNT.public_key


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT", "alg": "HS256"},
        {"typ": "JWT", "alg": "none"},
        {"typ": "JWT", "alg": "ED25519-NKEY"},
        {"typ": "JOSE", "alg": "ed25519-nkey"},
        {"alg": "ed25519-nkey"},
        {},
    ],
)
def test_unsupported_headers(header: dict[str, str]) -> None:
    assert _kind(signed(header, v2_claims(iss=ACCOUNT.public_key), ACCOUNT)) is (
        JwtErrorKind.UNSUPPORTED_HEADER
    )


def test_legacy_alg_name_is_accepted_for_v2_tokens() -> None:
    token = signed({"typ": "JWT", "alg": "ed25519"}, v2_claims(iss=ACCOUNT.public_key), ACCOUNT)
    assert jwt.decode(token)["iss"] == ACCOUNT.public_key


@pytest.mark.parametrize(
    "nats",
    [
        pytest.param(None, id="no-nats"),
        pytest.param({"type": "user"}, id="no-version"),
        pytest.param({"version": 1}, id="v1"),
        pytest.param({"version": 3}, id="v3"),
        pytest.param({"version": "2"}, id="string"),
        pytest.param({"version": 2.0}, id="float"),
        pytest.param({"version": True}, id="bool"),
        pytest.param("v2", id="nats-not-object"),
    ],
)
def test_unsupported_versions(nats: Any) -> None:
    claims = {"iss": ACCOUNT.public_key, "sub": "X", "nats": nats}
    assert _kind(signed(V2_HEADER_B64, claims, ACCOUNT)) is JwtErrorKind.UNSUPPORTED_VERSION


def test_top_level_type_marks_v1() -> None:
    claims = v2_claims(iss=ACCOUNT.public_key, type="user")
    assert _kind(signed(V2_HEADER_B64, claims, ACCOUNT)) is JwtErrorKind.UNSUPPORTED_VERSION


def test_v1_style_signature_over_payload_only_is_refused() -> None:
    payload = b64(json.dumps(v2_claims(iss=ACCOUNT.public_key)).encode())
    token = f"{V2_HEADER_B64}.{payload}.{b64(ACCOUNT.sign(payload.encode()))}"
    assert _kind(token) is JwtErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize(
    "iss",
    [None, "", 42, "ANOTAKEY", CURVE_PUBLIC, KeyPair.create(Prefix.USER).seed],
)
def test_bad_issuers(iss: Any) -> None:
    claims = v2_claims() | ({} if iss is None else {"iss": iss})
    assert _kind(signed(V2_HEADER_B64, claims, ACCOUNT)) is JwtErrorKind.BAD_ISSUER


def test_issuer_prefix_restriction() -> None:
    assert _kind(GOOD, issuer_prefixes={Prefix.SERVER}) is JwtErrorKind.BAD_ISSUER
    token = jwt.encode(v2_claims(), SERVER)
    assert jwt.decode(token, issuer_prefixes={Prefix.SERVER})["iss"] == SERVER.public_key


def test_signature_by_someone_else() -> None:
    forged = signed(V2_HEADER_B64, v2_claims(iss=ACCOUNT.public_key), SERVER)
    assert _kind(forged) is JwtErrorKind.BAD_SIGNATURE


def test_payload_swapped_under_a_valid_signature() -> None:
    other = jwt.encode(v2_claims(sub="OTHER"), ACCOUNT).split(".")[1]
    assert _kind(f"{GOOD_H}.{other}.{GOOD_S}") is JwtErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("sig", ["", "AAAA", GOOD_S[:-4]])
def test_short_signatures(sig: str) -> None:
    assert _kind(f"{GOOD_H}.{GOOD_P}.{sig}") is JwtErrorKind.BAD_SIGNATURE


def test_decode_accepts_bytes() -> None:
    assert jwt.decode(GOOD.encode()) == jwt.decode(GOOD)


def test_decode_unverified_does_not_check_signature() -> None:
    header, claims = jwt.decode_unverified(f"{GOOD_H}.{GOOD_P}.AAAA")
    assert header["alg"] == "ed25519-nkey"
    assert claims["sub"] == "UX"
    with pytest.raises(JwtError) as info:
        jwt.decode_unverified("a.b")
    assert info.value.kind is JwtErrorKind.MALFORMED
