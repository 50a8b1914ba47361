"""decode_request: claim checks once the signature verified (step 4) and field typing (step 5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from authsvc.domain import DenyReason
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import ReplyAddress, RequestRules, decode_request
from authsvc.protocol.xkeys import CurveKeyPair
from tests.support.callout import build_request
from tests.unit.protocol.request_builders import (
    DELETE,
    NOW,
    PLAIN,
    SEALED,
    SERVER,
    SERVICE,
    bend,
    claims,
    plaintext,
    raw_signed,
    rejected,
    sealed,
)

# --- step 4: claims (signature verified) -------------------------------------------------


def test_reply_address_of_a_rejected_sealed_request() -> None:
    payload, headers = sealed("aud", "elsewhere")
    exc = rejected(payload, headers, SEALED)
    assert exc.reason is DenyReason.REQUEST_MISADDRESSED
    assert exc.reply_to is not None
    assert exc.reply_to.server_id == SERVER.id
    assert exc.reply_to.server_xkey == SERVER.xkey
    assert exc.reply_to.sealed
    assert exc.reply_to.user_nkey.startswith("U")


def test_reply_address_is_exactly_the_request_fields() -> None:
    user = KeyPair.create(Prefix.USER).public_key
    exc = rejected(plaintext("nats.type", "authorization_response", user_nkey=user))
    assert exc.reason is DenyReason.REQUEST_WRONG_TYPE
    assert exc.reply_to == ReplyAddress(
        user_nkey=user, server_id=SERVER.id, server_xkey="", sealed=False
    )


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("nats.type", "authorization_response", DenyReason.REQUEST_WRONG_TYPE),
        ("nats.type", DELETE, DenyReason.REQUEST_WRONG_TYPE),
        (
            "aud",
            "ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA",
            DenyReason.REQUEST_MISADDRESSED,
        ),
        ("aud", DELETE, DenyReason.REQUEST_MISADDRESSED),
        (
            "nats.server_id.id",
            KeyPair.create(Prefix.SERVER).public_key,
            DenyReason.REQUEST_MISADDRESSED,
        ),
        ("nats.server_id.id", DELETE, DenyReason.REQUEST_MISADDRESSED),
        ("nats.server_id", "probe", DenyReason.REQUEST_MALFORMED),
        ("nats.server_id", DELETE, DenyReason.REQUEST_MALFORMED),
        ("exp", DELETE, DenyReason.REQUEST_EXPIRED),
        ("exp", int(NOW.timestamp()) - 3, DenyReason.REQUEST_EXPIRED),
        ("nbf", int(NOW.timestamp()) + 3, DenyReason.REQUEST_EXPIRED),
        ("iat", DELETE, DenyReason.REQUEST_MALFORMED),
        ("iat", -1, DenyReason.REQUEST_MALFORMED),
    ],
)
def test_claim_checks(path: str, value: Any, reason: DenyReason) -> None:
    exc = rejected(plaintext(path, value))
    assert exc.reason is reason
    assert exc.reply_to is not None  # signature verified and user_nkey valid


@pytest.mark.parametrize("exp", ["soon", 1.5e9, True, [1], 10**20])
def test_exp_of_the_wrong_type(exp: Any) -> None:
    exc = rejected(raw_signed(bend(claims(), "exp", exp)))
    assert exc.reason is DenyReason.REQUEST_MALFORMED
    assert exc.reply_to is not None


@pytest.mark.parametrize(
    "user_nkey",
    [DELETE, None, "", "UNOTAKEY", 42, KeyPair.create(Prefix.ACCOUNT).public_key],
)
def test_invalid_user_nkey(user_nkey: Any) -> None:
    exc = rejected(plaintext("nats.user_nkey", user_nkey))
    assert exc.reason is DenyReason.REQUEST_MALFORMED
    assert exc.reply_to is None  # no U... key: a response could never be accepted


def test_server_allow_list() -> None:
    payload = plaintext()
    other = RequestRules(allowed_servers=frozenset({KeyPair.create(Prefix.SERVER).public_key}))
    exc = rejected(payload, rules=other)
    assert exc.reason is DenyReason.SERVER_NOT_ALLOWED and exc.reply_to is not None
    allowed = RequestRules(allowed_servers=frozenset({SERVER.id}))
    decode_request(payload, None, now=NOW, rules=allowed)


def test_expiry_leeway_boundary() -> None:
    payload = plaintext()  # exp = NOW + 2s, leeway 2s
    decode_request(payload, None, now=NOW + timedelta(seconds=4), rules=PLAIN)
    exc = rejected(payload, now=NOW + timedelta(seconds=4, microseconds=1))
    assert exc.reason is DenyReason.REQUEST_EXPIRED
    strict = RequestRules(leeway=timedelta(0))
    assert rejected(payload, rules=strict, now=NOW + timedelta(seconds=3)).reason is (
        DenyReason.REQUEST_EXPIRED
    )


@pytest.mark.parametrize("claim_xkey", [DELETE, "", CurveKeyPair.create().public_key, "XNOTAKEY"])
def test_header_xkey_must_match_the_signed_claim(claim_xkey: Any) -> None:
    payload, headers = sealed("nats.server_id.xkey", claim_xkey)
    exc = rejected(payload, headers, SEALED)
    assert exc.reason is DenyReason.XKEY_MISMATCH
    assert exc.reply_to is not None


# --- step 5: field types and caps --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("nats.client_info", []),
        ("nats.client_info.id", "7"),
        ("nats.client_info.id", -1),
        ("nats.client_info.id", True),
        ("nats.client_info.id", 1.5),
        ("nats.client_info.host", 127),
        ("nats.client_info.nonce", ["n"]),
        ("nats.connect_opts", "user:pass"),
        ("nats.connect_opts.protocol", "1"),
        ("nats.connect_opts.user", 5),
        ("nats.connect_opts.pass", {"v": 1}),
        ("nats.connect_opts.auth_token", False),
        ("nats.server_id.name", 1),
        ("nats.server_id.tags", "a,b"),
        ("nats.server_id.tags", [1]),
        ("nats.client_tls", "tls"),
        ("nats.client_tls.certs", "PEM"),
        ("nats.client_tls.certs", [["PEM"]]),
        ("nats.client_tls.verified_chains", ["PEM"]),
        ("nats.client_tls.verified_chains", [[1]]),
        ("jti", 5),
    ],
)
def test_wrong_json_types(path: str, value: Any) -> None:
    c = claims(client_tls={"version": "1.3"})
    exc = rejected(raw_signed(bend(c, path, value)))
    assert exc.reason is DenyReason.REQUEST_MALFORMED
    assert exc.reply_to is not None


CAP = 64


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("nats.connect_opts.pass", "p" * (CAP + 1)),
        ("nats.connect_opts.auth_token", "t" * (CAP + 1)),
        ("nats.connect_opts.jwt", "j" * (CAP + 1)),
        ("nats.client_info.name", "é" * (CAP // 2 + 1)),  # the cap counts UTF-8 bytes
        ("nats.server_id.tags", ["ok", "x" * (CAP + 1)]),
        ("nats.client_tls", {"verified_chains": [["ok", "c" * (CAP + 1)]]}),
    ],
)
def test_field_cap(path: str, value: Any) -> None:
    rules = RequestRules(max_field_bytes=CAP)
    exc = rejected(plaintext(path, value), rules=rules)
    assert exc.reason is DenyReason.REQUEST_TOO_LARGE
    assert exc.reply_to is not None


def test_field_cap_boundary() -> None:
    rules = RequestRules(max_field_bytes=CAP)
    payload = plaintext("nats.connect_opts.pass", "é" * (CAP // 2))
    assert decode_request(payload, None, now=NOW, rules=rules).connect.password is not None


def test_details_never_carry_credentials() -> None:
    rules = RequestRules(max_field_bytes=CAP)
    exc = rejected(plaintext("nats.connect_opts.pass", "hunter2" * 20), rules=rules)
    assert "hunter2" not in str(exc) + exc.detail


def test_build_request_helper_round_trips() -> None:
    payload, headers = build_request(SERVER, now=NOW, service_xkey=SERVICE.public_key)
    assert decode_request(payload, headers, now=NOW, rules=SEALED).sealed
