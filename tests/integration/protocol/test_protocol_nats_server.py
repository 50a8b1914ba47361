"""The protocol package against the real nats-server binary (config mode, xkey on).

Proves what unit vectors cannot: the server accepts our generated account (issuer), user
and curve keys in its config, seals requests we can open and verify, and accepts responses
and user JWTs we sign and seal. Self-contained: a tmp config on a free loopback port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from authsvc.domain import ConnectRequest
from authsvc.protocol import (
    CurveKeyPair,
    KeyPair,
    Prefix,
    ReplyAddress,
    RequestRejected,
    RequestRules,
    decode_request,
    encode_response,
    encode_user_jwt,
)

pytestmark = pytest.mark.integration

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"


def _binary() -> str | None:
    beside_python = Path(sys.executable).with_name("nats-server")
    return str(beside_python) if beside_python.exists() else shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerSetup:
    url: str
    issuer: KeyPair
    xkey: CurveKeyPair
    service_user: KeyPair


def _config(port: int, d: ServerSetup) -> str:
    return f"""
listen: "127.0.0.1:{port}"
server_name: protocol-test
accounts {{
  AUTH {{ users: [ {{ user: auth, password: pwd }}, {{ nkey: {d.service_user.public_key} }} ] }}
  APP {{ }}
}}
authorization {{
  timeout: 2
  auth_callout {{
    issuer: {d.issuer.public_key}
    account: AUTH
    auth_users: [ auth, {d.service_user.public_key} ]
    xkey: {d.xkey.public_key}
  }}
}}
"""


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nats-server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    pytest.fail("nats-server did not start listening")


@pytest.fixture
def protocol_server(tmp_path: Path) -> Iterator[ServerSetup]:
    binary = _binary()
    if binary is None:
        pytest.skip("nats-server binary not available")
    port = _free_port()
    d = ServerSetup(
        url=f"nats://127.0.0.1:{port}",
        issuer=KeyPair.create(Prefix.ACCOUNT),
        xkey=CurveKeyPair.create(),
        service_user=KeyPair.create(Prefix.USER),
    )
    conf, log = tmp_path / "server.conf", tmp_path / "server.log"
    conf.write_text(_config(port, d))
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        yield d
    finally:
        proc.terminate()
        proc.wait(timeout=5)


async def test_server_accepts_our_generated_nkey_user(protocol_server: ServerSetup) -> None:
    # nats-py parses our seed; the server checks the nonce signature against our U... key.
    nc = await nats.connect(
        protocol_server.url, nkeys_seed_str=protocol_server.service_user.seed, allow_reconnect=False
    )
    try:
        assert nc.is_connected
    finally:
        await nc.close()


def _user_claims(request: ConnectRequest, now: int) -> dict[str, object]:
    return {
        "aud": "APP",  # config mode: target account name (auth_callout.go)
        "exp": now + 60,
        "iat": now,
        "name": request.connect.user,
        "sub": request.user_nkey,
        "nats": {
            "pub": {"allow": ["app.>"]},
            "sub": {"allow": ["app.>", "_INBOX.>"]},
            "type": "user",
            "version": 2,
        },
    }


def _reply_for(d: ServerSetup, payload: bytes, headers: dict[str, str] | None) -> bytes:
    now = datetime.now(UTC)
    rules = RequestRules(xkey=d.xkey, require_xkey=True)
    try:
        request = decode_request(payload, headers, now=now, rules=rules)
    except RequestRejected as exc:
        assert exc.reply_to is not None, exc.reason
        return encode_response(
            reply_to=exc.reply_to, signer=d.issuer, now=now, error=exc.reason, xkey=d.xkey
        )
    assert request.sealed and request.server.xkey
    reply_to = ReplyAddress(request.user_nkey, request.server.id, request.server.xkey, True)
    password = request.connect.password.reveal() if request.connect.password else ""
    if (request.connect.user, password) != ("alice", "secret"):
        return encode_response(
            reply_to=reply_to, signer=d.issuer, now=now, error="denied", xkey=d.xkey
        )
    token = encode_user_jwt(_user_claims(request, int(now.timestamp())), d.issuer)
    return encode_response(reply_to=reply_to, signer=d.issuer, now=now, user_jwt=token, xkey=d.xkey)


async def test_sealed_callout_round_trip(protocol_server: ServerSetup) -> None:
    service = await nats.connect(
        protocol_server.url, user="auth", password="pwd", allow_reconnect=False
    )
    seen: list[bytes] = []

    async def handle(msg: Msg) -> None:
        seen.append(msg.data)
        await msg.respond(_reply_for(protocol_server, msg.data, msg.headers))

    await service.subscribe(CALLOUT_SUBJECT, cb=handle)
    await service.flush()
    try:
        alice = await nats.connect(
            protocol_server.url, user="alice", password="secret", allow_reconnect=False
        )
        await alice.publish("app.hello", b"hi")
        await alice.flush()
        await alice.close()
        with pytest.raises(Exception, match="Authorization Violation"):
            await nats.connect(
                protocol_server.url,
                user="alice",
                password="wrong",
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
    finally:
        await service.close()
    assert len(seen) == 2
    assert all(not data.startswith(b"eyJ") for data in seen)  # the server sealed both
