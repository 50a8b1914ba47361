"""decode_request: accepted requests and the envelope checks (steps 1-3: size, xkey, JWT)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authsvc.domain import (
    ClientInfo,
    ClientTls,
    ConnectOptions,
    ConnectRequest,
    DenyReason,
    Secret,
    ServerInfo,
)
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import SERVER_XKEY_HEADER, RequestRules, decode_request
from authsvc.protocol.xkeys import CurveKeyPair
from tests.support.callout import FakeServer, make_request_claims, sign_request
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
    rejected,
    sealed,
)

# --- accepted requests -------------------------------------------------------------------


def test_plaintext_request_maps_every_field() -> None:
    c = claims(
        client_info={"user": "alice", "name": "app", "nonce": "n0nce", "id": 42},
        connect_opts={
            "jwt": "eyJhbGc",
            "nkey": "UABC",
            "sig": "c2ln",
            "auth_token": "tok-1",
            "user": "alice",
            "pass": "s3cret",
            "name": "app",
        },
        client_tls={
            "version": "1.3",
            "cipher": "TLS_AES_128_GCM_SHA256",
            "certs": ["CERT-A"],
            "verified_chains": [["LEAF", "ROOT"]],
            "server_name": "ignored",
        },
    )
    bend(c, "nats.server_id.tags", ["az:1", "rack:2"])
    bend(c, "nats.server_id.cluster", "c1")
    payload, headers = sign_request(c, SERVER)
    request = decode_request(payload, headers, now=NOW, rules=PLAIN)
    assert request == ConnectRequest(
        server=ServerInfo(
            id=SERVER.id,
            name="probe",
            host="127.0.0.1",
            version="2.15.1",
            cluster="c1",
            tags=("az:1", "rack:2"),
        ),
        user_nkey=c["nats"]["user_nkey"],
        client=ClientInfo(
            host="127.0.0.1",
            cid=42,
            user="alice",
            name="app",
            kind="Client",
            type="nats",
            nonce="n0nce",
        ),
        connect=ConnectOptions(
            jwt="eyJhbGc",
            nkey="UABC",
            sig="c2ln",
            auth_token=Secret("tok-1"),
            user="alice",
            password=Secret("s3cret"),
            name="app",
            lang="python3",
            version="2.16.0",
            protocol=1,
        ),
        request_id=request.request_id,
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=2),
        sealed=False,
        tls=ClientTls(
            version="1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            certs=("CERT-A",),
            verified_chains=(("LEAF", "ROOT"),),
        ),
    )
    assert len(request.request_id) == 52  # base32 of a SHA-512/256 digest
    assert request.raw_size == len(payload)
    assert "s3cret" not in repr(request) and "tok-1" not in repr(request)


def test_sealed_request() -> None:
    payload, headers = sealed()
    assert not payload.startswith(b"eyJ")
    request = decode_request(payload, headers, now=NOW, rules=SEALED)
    assert request.sealed
    assert request.server.xkey == SERVER.xkey


def test_sealed_request_satisfies_require_xkey() -> None:
    payload, headers = sealed()
    rules = RequestRules(xkey=SERVICE, require_xkey=True)
    assert decode_request(payload, headers, now=NOW, rules=rules).sealed


def test_xkey_configured_still_accepts_plaintext_unless_required() -> None:
    assert not decode_request(plaintext(), None, now=NOW, rules=SEALED).sealed


def test_header_name_case_is_tolerated() -> None:
    payload, headers = sealed()
    lowered = {k.lower(): v for k, v in headers.items()}
    assert decode_request(payload, lowered, now=NOW, rules=SEALED).sealed


def test_missing_optional_objects_take_defaults() -> None:
    c = claims()
    for path in ("nats.client_info", "nats.connect_opts", "nats.client_tls"):
        bend(c, path, DELETE)
    request = decode_request(sign_request(c, SERVER)[0], None, now=NOW, rules=PLAIN)
    assert request.client == ClientInfo()
    assert request.connect == ConnectOptions()
    assert request.tls is None


@pytest.mark.parametrize(
    "path",
    [
        "nats.client_info.user",
        "nats.client_info.id",
        "nats.connect_opts.pass",
        "nats.client_tls",
        "nats.server_id.tags",
        "jti",
    ],
)
def test_json_null_reads_as_absent(path: str) -> None:
    payload = plaintext(path, None)
    decode_request(payload, None, now=NOW, rules=PLAIN)


def test_empty_credentials_are_not_secrets() -> None:
    payload = plaintext(connect_opts={"pass": "", "auth_token": ""})
    connect = decode_request(payload, None, now=NOW, rules=PLAIN).connect
    assert connect.password is None and connect.auth_token is None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decode_request(plaintext(), None, now=NOW.replace(tzinfo=None), rules=PLAIN)


# --- step 1: size ------------------------------------------------------------------------


def test_oversized_request() -> None:
    payload = plaintext()
    exc = rejected(payload, rules=RequestRules(max_request_bytes=len(payload) - 1))
    assert exc.reason is DenyReason.REQUEST_TOO_LARGE and exc.reply_to is None
    decode_request(payload, None, now=NOW, rules=RequestRules(max_request_bytes=len(payload)))


def test_empty_request() -> None:
    assert rejected(b"").reason is DenyReason.REQUEST_MALFORMED


# --- step 2: envelope --------------------------------------------------------------------


def test_sealed_without_configured_xkey() -> None:
    payload, headers = sealed()
    assert rejected(payload, headers, PLAIN).reason is DenyReason.XKEY_NOT_CONFIGURED


def test_sealed_without_configured_xkey_cannot_be_answered() -> None:
    payload, headers = sealed()
    assert rejected(payload, headers, PLAIN).reply_to is None  # nothing verified to answer


def test_plaintext_when_xkey_required_is_answered_in_plaintext() -> None:
    rules = RequestRules(xkey=SERVICE, require_xkey=True)
    refusal = rejected(plaintext(), None, rules)
    assert refusal.reason is DenyReason.XKEY_REQUIRED
    assert refusal.reply_to is not None and not refusal.reply_to.sealed


def test_plaintext_with_a_bad_signature_is_not_answered_even_when_xkey_required() -> None:
    rules = RequestRules(xkey=SERVICE, require_xkey=True)
    token = plaintext()
    forged = token[:-4] + (b"AAAA" if not token.endswith(b"AAAA") else b"BBBB")
    refusal = rejected(forged, None, rules)
    assert refusal.reason is DenyReason.REQUEST_BAD_SIGNATURE and refusal.reply_to is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="no-headers"),
        pytest.param({}, id="empty-headers"),
        pytest.param({SERVER_XKEY_HEADER: ""}, id="empty-value"),
        pytest.param({SERVER_XKEY_HEADER: "garbage"}, id="garbage"),
        pytest.param({SERVER_XKEY_HEADER: SERVER.id}, id="server-nkey-not-xkey"),
        pytest.param({SERVER_XKEY_HEADER: CurveKeyPair.create().public_key}, id="other-xkey"),
    ],
)
def test_bad_server_xkey_header(headers: dict[str, str] | None) -> None:
    payload, _ = sealed()
    exc = rejected(payload, headers, SEALED)
    assert exc.reason is DenyReason.XKEY_DECRYPT_FAILED and exc.reply_to is None


def test_sealed_for_another_service() -> None:
    other = RequestRules(xkey=CurveKeyPair.create())
    payload, headers = sealed()
    assert rejected(payload, headers, other).reason is DenyReason.XKEY_DECRYPT_FAILED


def _truncations(data: bytes) -> list[bytes]:
    return [data[:n] for n in (1, 4, 10, 28, 43, 44, len(data) // 2, len(data) - 1)]


@pytest.mark.parametrize(
    "blob",
    [
        b"xkv1",
        b"xkv1" + bytes(100),
        b"\x00" * 64,
        b"not a jwt at all",
        b"EYJ" + b"A" * 60,
        "é".encode() * 30,
        *_truncations(sealed()[0]),
    ],
)
def test_garbage_and_truncated_sealed_blobs(blob: bytes) -> None:
    exc = rejected(blob, {SERVER_XKEY_HEADER: SERVER.xkey}, SEALED)
    assert exc.reason is DenyReason.XKEY_DECRYPT_FAILED and exc.reply_to is None


def test_garbage_without_xkey_is_not_configured() -> None:
    assert rejected(b"\x00" * 64).reason is DenyReason.XKEY_NOT_CONFIGURED


# --- step 3: JWT -------------------------------------------------------------------------


def test_signature_by_another_server() -> None:
    impostor = FakeServer(KeyPair.create(Prefix.SERVER), SERVER.curve)
    c = claims()
    token = sign_request(c, impostor)[0]
    # Re-point iss/server_id at the real server without re-signing: the signature breaks.
    forged = [*sign_request(claims(), SERVER)[0].split(b".")[:2], token.split(b".")[2]]
    exc = rejected(b".".join(forged))
    assert exc.reason is DenyReason.REQUEST_BAD_SIGNATURE and exc.reply_to is None


@pytest.mark.parametrize("prefix", [Prefix.ACCOUNT, Prefix.USER, Prefix.OPERATOR])
def test_request_not_signed_by_a_server_key(prefix: Prefix) -> None:
    signer = FakeServer(KeyPair.create(prefix), SERVER.curve)
    c = make_request_claims(signer, now=NOW)
    exc = rejected(sign_request(c, signer)[0])
    assert exc.reason is DenyReason.REQUEST_BAD_SIGNATURE and exc.reply_to is None


def test_sealed_request_with_bad_signature() -> None:
    token = plaintext()
    head, payload, sig = token.split(b".")
    broken = head + b"." + payload + b"." + (b"A" if sig[:1] != b"A" else b"B") + sig[1:]
    box = SERVER.curve.seal(broken, SERVICE.public_key)
    exc = rejected(box, {SERVER_XKEY_HEADER: SERVER.xkey}, SEALED)
    assert exc.reason is DenyReason.REQUEST_BAD_SIGNATURE and exc.reply_to is None


def test_plaintext_that_is_not_a_jwt() -> None:
    assert rejected(b"eyJ not a token").reason is DenyReason.REQUEST_MALFORMED


def test_v1_request_is_wrong_type() -> None:
    exc = rejected(plaintext("nats.version", 1))
    assert exc.reason is DenyReason.REQUEST_WRONG_TYPE and exc.reply_to is None


@pytest.mark.parametrize("cut", [3, 10, 40, 47, 48, 60, 200, -90, -86, -10, -1])
def test_truncated_plaintext(cut: int) -> None:
    payload = plaintext()
    exc = rejected(payload[:cut])
    assert exc.reason in {DenyReason.REQUEST_MALFORMED, DenyReason.REQUEST_BAD_SIGNATURE}
    assert exc.reply_to is None
