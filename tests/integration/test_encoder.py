"""Our response encoder, judged by nats-server itself.

A responder built from authsvc's own codec answers the server; when it addresses the
response to the wrong user nkey or the wrong server, the server must refuse the client.
The untampered case proves the harness admits clients at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.clock import SystemClock
from authsvc.domain import Identity, IdentitySource
from authsvc.policy import evaluate
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import ReplyAddress, decode_request
from authsvc.protocol.response import encode_response
from authsvc.server import Components, build, connect
from authsvc.settings import load_settings
from tests.support.deploy import Deployment, iter_modes

TAMPERS = ["none", "wrong-user", "wrong-server"]


def _address(tamper: str, address: ReplyAddress) -> ReplyAddress:
    if tamper == "wrong-user":
        return dataclasses.replace(address, user_nkey=KeyPair.create(Prefix.USER).public_key)
    if tamper == "wrong-server":
        return dataclasses.replace(address, server_id=KeyPair.create(Prefix.SERVER).public_key)
    return address


async def _responder(d: Deployment, parts: Components, tamper: str) -> Any:
    settings = load_settings(d.settings_file)
    nc = await connect(settings, parts.keys)
    clock = SystemClock()

    async def on_request(msg: Any) -> None:
        now = clock.now()
        request = decode_request(msg.data, msg.headers, now=now, rules=parts.rules)
        identity = Identity(source=IdentitySource.NKEY, principal="nkey:" + request.connect.nkey,
                            subject=request.connect.nkey)
        decision = evaluate(identity, request, parts.policy.current, now)
        minted = parts.minter.mint(grant=decision.grant, identity=identity,  # type: ignore[union-attr]
                                   user_nkey=request.user_nkey, now=now)
        address = ReplyAddress(user_nkey=request.user_nkey, server_id=request.server.id,
                               server_xkey=request.server.xkey, sealed=request.sealed)
        reply = encode_response(reply_to=_address(tamper, address), signer=parts.minter.issuer,
                                now=now, user_jwt=minted.token,  # type: ignore[union-attr]
                                xkey=parts.rules.xkey)
        await nc.publish(msg.reply, reply)

    await nc.subscribe("$SYS.REQ.USER.AUTH", cb=on_request)
    await nc.flush()
    return nc


@pytest.mark.parametrize("mode_xkey", list(iter_modes()),
                         ids=lambda p: f"{p[0]}-xkey-{'on' if p[1] else 'off'}")
async def test_server_rejects_misaddressed_responses(tmp_path: Any, mode_xkey: Any) -> None:
    mode, xkey = mode_xkey
    d = Deployment(tmp_path, mode=mode, xkey=xkey)
    client = d.identity("client")
    d.rules = [{"id": "client", "match": {"source": "nkey", "subject": client.public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x"]}}}]
    d.start(service=False)
    outcomes: dict[str, bool] = {}
    try:
        parts = build(load_settings(d.settings_file))
        for tamper in TAMPERS:
            nc = await _responder(d, parts, tamper)
            try:
                conn = await nats.connect(d.url, nkeys_seed_str=client.seed,
                                          allow_reconnect=False, connect_timeout=5)
                await conn.close()
                outcomes[tamper] = True
            except (TimeoutError, NatsError):
                outcomes[tamper] = False
            await nc.close()
    finally:
        d.stop()
    assert outcomes == {"none": True, "wrong-user": False, "wrong-server": False}
    log = (d.root / "nats-server.log").read_text()
    assert "not for expected user" in log or "not for server" in log
