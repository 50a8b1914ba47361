"""CalloutService with real keys, policy and audit file: bad input and faults fail closed.

No network: requests are built and signed the way nats-server does (tests/support/callout),
replies are opened and verified with our own codec.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit import AuditLog, FileSink
from authsvc.clock import FixedClock
from authsvc.domain import ConnectRequest, DenyReason, Identity
from authsvc.identity import VerifierRegistry
from authsvc.protocol import jwt
from authsvc.protocol.request import SERVER_XKEY_HEADER
from authsvc.server import Components, build
from authsvc.settings import load_settings
from tests.support.callout import FakeServer, make_request_claims, sign_request
from tests.support.deploy import Deployment

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


class Env:
    """A service built from a deployment's files, plus a fake server to talk to it."""

    def __init__(self, tmp: Path, *, mode: str = "config", xkey: bool = True,
                 service: dict[str, Any] | None = None, audit_path: str | None = None,
                 verifiers: VerifierRegistry | None = None) -> None:
        self.d = Deployment(tmp, mode=mode, xkey=xkey)
        writer = self.d.identity("writer")
        self.d.rules = [{"id": "writer", "match": {"source": "nkey", "subject": writer.public_key},
                         "grant": {"account": "APP", "publish": {"allow": ["a.b"]}}}]
        self.d.settings_extra = {"service": service or {}}
        if audit_path:
            self.d.settings_extra["audit"] = {"path": audit_path}
        self.d.write()
        self.settings = load_settings(self.d.settings_file)
        self.parts: Components = build(self.settings, clock=FixedClock(NOW), verifiers=verifiers)
        self.server = FakeServer.create()
        self.xkey = self.parts.keys.xkey() if xkey else None

    def claims(self, who: str = "writer", **kw: Any) -> dict[str, Any]:
        key = self.d.identity(who)
        nonce = "n0nce-" + who
        sig = base64.b64encode(key.sign(nonce.encode())).decode()
        return make_request_claims(
            self.server, now=NOW, sealed=self.xkey is not None,
            client_info={"nonce": nonce}, connect_opts={"nkey": key.public_key, "sig": sig}, **kw)

    def sign(self, claims: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        return sign_request(claims, self.server,
                            service_xkey=self.xkey.public_key if self.xkey else None)

    async def handle(self, payload: bytes, headers: dict[str, str] | None) -> bytes | None:
        return await self.parts.service.handle(payload, headers)

    def open_reply(self, reply: bytes) -> dict[str, Any]:
        if not reply.startswith(b"eyJ"):
            assert self.xkey is not None
            reply = self.server.curve.open(reply, self.xkey.public_key)
        claims = jwt.decode(reply)
        assert claims["aud"] == self.server.id
        return claims

    def audit(self) -> list[dict[str, Any]]:
        return self.d.audit()


@pytest.fixture(params=[("config", True), ("config", False), ("operator", True),
                        ("operator", False)],
                ids=["config-xkey", "config-plain", "operator-xkey", "operator-plain"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    mode, xkey = request.param
    return Env(tmp_path, mode=mode, xkey=xkey)


async def test_valid_request_is_allowed_and_sealed_as_the_request(env: Env) -> None:
    claims = env.claims()
    reply = await env.handle(*env.sign(claims))
    assert reply is not None
    assert reply.startswith(b"eyJ") is (env.xkey is None)
    response = env.open_reply(reply)
    assert response["sub"] == claims["nats"]["user_nkey"]
    assert response["nats"]["type"] == "authorization_response"
    assert response["nats"]["version"] == 2
    user = jwt.decode(response["nats"]["jwt"])
    assert user["sub"] == claims["nats"]["user_nkey"]
    assert env.audit()[-1]["decision"] == "allow"


def _forge(claims: dict[str, Any], *, iss: str, signer: FakeServer) -> bytes:
    """A token claiming ``iss`` but signed by someone else's key."""
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps(dict(jwt.HEADER)).encode())
    body = b64(json.dumps({**claims, "iss": iss}).encode())
    return head + b"." + body + b"." + b64(signer.signer.sign(head + b"." + body))


def _tamper_signature(payload: bytes) -> bytes:
    head, body, sig = payload.split(b".")
    return b".".join([head, body, sig[:-4] + (b"AAAA" if not sig.endswith(b"AAAA") else b"BBBB")])


async def _bad_payloads(env: Env) -> list[tuple[str, bytes, dict[str, str] | None, DenyReason]]:
    """(case, payload, headers, expected reason) for the plaintext-JWT variants."""
    good = jwt.encode(env.claims(), env.server.signer).encode()
    other = FakeServer.create()
    forged = _forge(env.claims(), iss=env.server.id, signer=other)
    expired = env.claims()
    expired["exp"] = int((NOW - timedelta(minutes=5)).timestamp())
    wrong_aud = {**env.claims(), "aud": "someone-else"}
    wrong_type = env.claims()
    wrong_type["nats"]["type"] = "user"
    spoofed = env.claims()
    spoofed["nats"]["server_id"]["id"] = other.id
    return [
        ("empty", b"", None, DenyReason.REQUEST_MALFORMED),
        ("garbage-jwt", b"eyJnot-a-jwt", None, DenyReason.REQUEST_MALFORMED),
        ("truncated", good[: len(good) // 2], None, DenyReason.REQUEST_MALFORMED),
        ("oversized", b"eyJ" + b"A" * (70 * 1024), None, DenyReason.REQUEST_TOO_LARGE),
        ("bad-signature", _tamper_signature(good), None, DenyReason.REQUEST_BAD_SIGNATURE),
        ("forged-issuer", forged, None, DenyReason.REQUEST_BAD_SIGNATURE),
        ("expired", jwt.encode(expired, env.server.signer).encode(), None,
         DenyReason.REQUEST_EXPIRED),
        ("misaddressed", jwt.encode(wrong_aud, env.server.signer).encode(), None,
         DenyReason.REQUEST_MISADDRESSED),
        ("wrong-type", jwt.encode(wrong_type, env.server.signer).encode(), None,
         DenyReason.REQUEST_WRONG_TYPE),
        ("iss-not-server-id", jwt.encode(spoofed, env.server.signer).encode(), None,
         DenyReason.REQUEST_MISADDRESSED),
    ]


async def test_bad_plaintext_input_is_denied_audited_and_service_keeps_serving(
        tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    cases = await _bad_payloads(env)
    for case, payload, headers, reason in cases:
        before = len(env.audit())
        reply = await env.handle(payload, headers)
        records = env.audit()
        assert len(records) == before + 1, case
        assert records[-1]["reason"] == reason, case
        assert records[-1]["decision"] == "deny", case
        if reply is not None:  # only requests whose signature verified can be answered
            assert env.open_reply(reply)["nats"]["error"] == reason, case
    assert (await env.handle(*env.sign(env.claims()))) is not None
    assert env.audit()[-1]["decision"] == "allow"


async def test_answerable_rejections_get_an_error_reply(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    expired = env.claims()
    expired["exp"] = int((NOW - timedelta(minutes=5)).timestamp())
    reply = await env.handle(*env.sign(expired))
    assert reply is not None
    response = env.open_reply(reply)
    assert response["nats"]["error"] == DenyReason.REQUEST_EXPIRED
    assert response["sub"] == expired["nats"]["user_nkey"]


async def test_drop_mode_sends_nothing_but_still_audits(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False, service={"invalid_request": "drop"})
    expired = env.claims()
    expired["exp"] = int((NOW - timedelta(minutes=5)).timestamp())
    assert await env.handle(*env.sign(expired)) is None
    assert env.audit()[-1]["reason"] == DenyReason.REQUEST_EXPIRED


async def test_xkey_rules(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=True)
    assert env.xkey is not None
    plaintext = jwt.encode(env.claims(), env.server.signer).encode()
    sealed, headers = env.sign(env.claims())
    stranger = FakeServer.create()
    cases = [
        ("plaintext-when-required", plaintext, None, DenyReason.XKEY_REQUIRED),
        ("garbage-blob", b"xkv1" + b"\x00" * 60, headers, DenyReason.XKEY_DECRYPT_FAILED),
        ("not-xkv1", b"\x01\x02garbage", headers, DenyReason.XKEY_DECRYPT_FAILED),
        ("truncated-seal", sealed[:30], headers, DenyReason.XKEY_DECRYPT_FAILED),
        ("header-not-claim", sealed, {SERVER_XKEY_HEADER: stranger.xkey},
         DenyReason.XKEY_DECRYPT_FAILED),
    ]
    for case, payload, hdrs, reason in cases:
        reply = await env.handle(payload, hdrs)
        assert env.audit()[-1]["reason"] == reason, case
        # Only the plaintext request is signed and readable: the one refusal with an address.
        if reason is DenyReason.XKEY_REQUIRED:
            assert reply is not None and reply.startswith(b"eyJ"), case  # plaintext answer
            assert env.open_reply(reply)["nats"]["error"] == reason, case
            assert env.audit()[-1]["user_nkey"], case
        else:
            assert reply is None, case
    # Sealed by the real server key, but the signed claim names another xkey.
    claims = env.claims()
    claims["nats"]["server_id"]["xkey"] = stranger.xkey
    payload, hdrs = env.sign(claims)
    await env.handle(payload, hdrs)
    assert env.audit()[-1]["reason"] == DenyReason.XKEY_MISMATCH


async def test_sealed_request_without_configured_xkey_is_refused(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    other = Env(tmp_path / "other", xkey=True)
    assert other.xkey is not None
    payload, headers = sign_request(env.claims(), env.server, service_xkey=other.xkey.public_key)
    await env.handle(payload, headers)
    assert env.audit()[-1]["reason"] == DenyReason.XKEY_NOT_CONFIGURED


async def test_server_allow_list(tmp_path: Path) -> None:
    allowed = FakeServer.create()
    env = Env(tmp_path, xkey=False, service={"allowed_servers": [allowed.id]})
    await env.handle(*env.sign(env.claims()))
    assert env.audit()[-1]["reason"] == DenyReason.SERVER_NOT_ALLOWED
    env.server = allowed
    await env.handle(*env.sign(env.claims()))
    assert env.audit()[-1]["decision"] == "allow"


async def test_unwritable_audit_log_turns_allow_into_error_deny(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False, audit_path="/dev/full")
    claims = env.claims()
    reply = await env.handle(*env.sign(claims))
    assert reply is not None
    assert env.open_reply(reply)["nats"]["error"] == DenyReason.AUDIT_UNAVAILABLE


@pytest.mark.parametrize("last", [b"{}", b"[1]"])
async def test_an_audit_log_ending_in_a_record_that_is_not_chained_is_not_written_to(
        tmp_path: Path, last: bytes) -> None:
    env = Env(tmp_path, xkey=False)
    earlier = AuditLog(FileSink(env.d.audit_path, fsync=False), instance="x",
                       clock=FixedClock(NOW))
    earlier.event("service.start")  # the chain so far, then a line that is not a record
    earlier.close()
    with env.d.audit_path.open("ab") as handle:
        handle.write(last + b"\n")
    before = env.d.audit_path.read_bytes()
    reply = await env.handle(*env.sign(env.claims()))
    assert reply is not None
    assert env.open_reply(reply)["nats"]["error"] == DenyReason.AUDIT_UNAVAILABLE
    assert env.parts.service.decisions[("error", "audit_unavailable")] == 1
    assert env.d.audit_path.read_bytes() == before  # no second chain after the junk


async def test_an_allow_whose_commit_fails_is_superseded_by_its_error_record(
        tmp_path: Path) -> None:
    # Fault injection: the line reaches the file, the fsync that would make it durable
    # fails (EIO). The client is refused, and the error record names the allow it replaces.
    env = Env(tmp_path, xkey=False)
    sink = env.parts.audit.sink

    async def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    sink._fsync = True
    sink._fsyncer.fsync = failing_fsync  # type: ignore[method-assign]
    reply = await env.handle(*env.sign(env.claims()))
    assert reply is not None
    assert env.open_reply(reply)["nats"]["error"] == DenyReason.AUDIT_UNAVAILABLE
    allow, error = env.audit()[-2:]
    assert allow["decision"] == "allow" and error["decision"] == "error"
    assert error["reason"] == DenyReason.AUDIT_UNAVAILABLE
    assert error["supersedes"] == allow["event_id"]
    assert error["user_nkey"] == allow["user_nkey"]
    assert error["identity"] == allow["identity"]
    assert error["policy_revision"] == allow["policy_revision"]
    assert "supersedes" not in allow and "jwt" not in error
    assert env.parts.service.decisions[("error", "audit_unavailable")] == 1
    assert env.parts.service.decisions[("allow", "allowed")] == 0


class _Exploding:
    from authsvc.domain import IdentitySource

    source = IdentitySource.NKEY

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity:
        raise RuntimeError("bug in a verifier")


async def test_unexpected_fault_is_an_audited_error_deny(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False, verifiers=VerifierRegistry([_Exploding()]))
    reply = await env.handle(*env.sign(env.claims()))
    assert reply is not None
    assert env.open_reply(reply)["nats"]["error"] == DenyReason.INTERNAL_ERROR
    record = env.audit()[-1]
    assert record["decision"] == "error"
    assert record["reason"] == DenyReason.INTERNAL_ERROR


async def test_secrets_never_reach_the_audit_log(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    claims = env.claims()
    claims["nats"]["connect_opts"].update(auth_token="tok-SECRET-1", password="pw-SECRET-2",
                                          **{"pass": "pw-SECRET-3"})
    await env.handle(*env.sign(claims))
    text = env.d.audit_path.read_text()
    for secret in ("tok-SECRET-1", "pw-SECRET-2", "pw-SECRET-3", env.d.identity("writer").seed):
        assert secret not in text


async def test_allow_records_stage_timings(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    await env.handle(*env.sign(env.claims()))
    record = env.audit()[-1]
    assert record["decision"] == "allow"
    assert set(record["stages_ms"]) == {"decode", "verify", "policy", "mint"}
    assert all(value >= 0 for value in record["stages_ms"].values())
    assert sum(record["stages_ms"].values()) <= record["latency_ms"] + 0.01


def _self_signed_pem() -> tuple[str, str]:
    """A throwaway client certificate (PEM) and the SHA-256 of its DER bytes."""
    import hashlib
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client-7")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert.public_bytes(serialization.Encoding.PEM).decode(), hashlib.sha256(der).hexdigest()


async def test_client_tls_is_recorded_as_a_fingerprint(tmp_path: Path) -> None:
    env = Env(tmp_path, xkey=False)
    pem, fingerprint = _self_signed_pem()
    claims = env.claims(client_tls={"version": "1.3", "cipher": "TLS_AES_128_GCM_SHA256",
                                    "verified_chains": [[pem]]})
    await env.handle(*env.sign(claims))
    record = env.audit()[-1]
    assert record["tls"] == {"version": "1.3", "cipher": "TLS_AES_128_GCM_SHA256",
                             "fingerprint_sha256": fingerprint}
    assert "BEGIN CERTIFICATE" not in env.d.audit_path.read_text()


async def test_a_failing_audit_log_is_logged_once_per_interval_not_per_request(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = Env(tmp_path, xkey=False, audit_path="/dev/full")
    with caplog.at_level(logging.ERROR, logger="authsvc.service"):
        for _ in range(20):
            reply = await env.handle(*env.sign(env.claims()))
            assert reply is not None
            assert env.open_reply(reply)["nats"]["error"] == DenyReason.AUDIT_UNAVAILABLE
    assert env.parts.service.decisions[("error", "audit_unavailable")] == 20
    assert 1 <= len([r for r in caplog.records if r.name == "authsvc.service"]) <= 2


async def test_debug_logs_one_line_per_decision_without_secrets(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = Env(tmp_path, xkey=False)
    claims = env.claims()
    with caplog.at_level(logging.DEBUG, logger="authsvc.service"):
        await env.handle(*env.sign(claims))
    lines = [r.getMessage() for r in caplog.records if r.name == "authsvc.service"]
    writer = env.d.identity("writer")
    assert len(lines) == 1 and f"nkey:{writer.public_key}" in lines[0]
    assert claims["nats"]["connect_opts"]["sig"] not in lines[0]
