"""Our response encoder, judged by nats-server itself.

A responder built from authsvc's own codec answers the server, each time bending one thing
the server checks (nats-server's ``server/auth_callout.go``; its
auth_callout_test.go: BadUser, BadServer, ExpiredUser, ExpiredResponse, ErrorResponse,
ServerConfigEncryption, OperatorModeBasics). The untampered case proves the harness
admits clients at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.clock import SystemClock
from authsvc.domain import Allow, ConnectRequest, Identity, IdentitySource
from authsvc.minting import AccountKey, Minter, Mode
from authsvc.minting.signer import MintedJwt
from authsvc.policy import evaluate
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import ReplyAddress, decode_request
from authsvc.protocol.response import encode_response
from authsvc.server import Components, build, connect
from authsvc.settings import load_settings
from tests.support.deploy import Deployment, iter_modes

Reply = Callable[[ConnectRequest, Components, datetime], bytes]


def _address(request: ConnectRequest, **change: Any) -> ReplyAddress:
    address = ReplyAddress(user_nkey=request.user_nkey, server_id=request.server.id,
                           server_xkey=request.server.xkey, sealed=request.sealed)
    return dataclasses.replace(address, **change)


def _mint(request: ConnectRequest, parts: Components, now: datetime,
          minter: Minter | None = None, account: str | None = None) -> str:
    identity = Identity(source=IdentitySource.NKEY, principal="nkey:" + request.connect.nkey,
                        subject=request.connect.nkey)
    decision = evaluate(identity, request, parts.policy.current, now)
    assert isinstance(decision, Allow)
    grant = dataclasses.replace(decision.grant, account=account or decision.grant.account)
    minted = (minter or parts.minter).mint(grant=grant, identity=identity,
                                           user_nkey=request.user_nkey, now=now)
    assert isinstance(minted, MintedJwt)
    return minted.token


def _respond(request: ConnectRequest, parts: Components, now: datetime, *,
             address: ReplyAddress | None = None, signer: KeyPair | None = None,
             sealed: bool = True, **kw: Any) -> bytes:
    kw.setdefault("user_jwt", None if "error" in kw else _mint(request, parts, now))
    return encode_response(reply_to=address or _address(request),
                           signer=signer or parts.minter.issuer, now=now,
                           xkey=parts.rules.xkey if sealed else None, **kw)


def _other_account(request: ConnectRequest, parts: Components, now: datetime) -> bytes:
    """Operator mode: a user of SYS, an account the callout may not place users in."""
    sys_key = parts.keys.account("SYS")
    minter = Minter(mode=Mode.OPERATOR, issuer=parts.minter.issuer, lifetime=parts.minter.lifetime,
                    accounts={"SYS": AccountKey(public_key=sys_key.public_key,
                                                signing_key=sys_key)})
    return _respond(request, parts, now, user_jwt=_mint(request, parts, now, minter, "SYS"))


CASES: dict[str, tuple[Reply, bool]] = {
    "none": (lambda r, p, n: _respond(r, p, n), True),
    "wrong-user": (lambda r, p, n: _respond(
        r, p, n, address=_address(r, user_nkey=KeyPair.create(Prefix.USER).public_key)), False),
    "wrong-server": (lambda r, p, n: _respond(
        r, p, n, address=_address(r, server_id=KeyPair.create(Prefix.SERVER).public_key)), False),
    "expired-user": (lambda r, p, n: _respond(
        r, p, n, user_jwt=_mint(r, p, n - timedelta(hours=13))), False),
    "expired-response": (lambda r, p, n: _respond(
        r, p, n - timedelta(minutes=5), user_jwt=_mint(r, p, n)), False),
    "error": (lambda r, p, n: _respond(r, p, n, error="no_matching_rule"), False),
    "plaintext-reply": (lambda r, p, n: _respond(r, p, n, sealed=False), True),
}
def _foreign_user_jwt(request: ConnectRequest, parts: Components, now: datetime) -> bytes:
    minter = Minter(mode=Mode.CONFIG, issuer=KeyPair.create(Prefix.ACCOUNT),
                    lifetime=parts.minter.lifetime)
    return _respond(request, parts, now, user_jwt=_mint(request, parts, now, minter))


CONFIG_ONLY = {
    "user-jwt-wrong-issuer": (_foreign_user_jwt, False),
    # A plaintext response must be signed by the issuer. A sealed one is not checked: the
    # server treats possession of the xkey as authentication.
    "response-wrong-signer-plaintext": (lambda r, p, n: _respond(
        r, p, n, signer=KeyPair.create(Prefix.ACCOUNT), sealed=False), False),
}
OPERATOR_ONLY = {"account-not-allowed": (_other_account, False)}


async def _responder(d: Deployment, parts: Components, reply: Reply) -> Any:
    nc = await connect(load_settings(d.settings_file), parts.keys)
    clock = SystemClock()

    async def on_request(msg: Any) -> None:
        now = clock.now()
        request = decode_request(msg.data, msg.headers, now=now, rules=parts.rules)
        await nc.publish(msg.reply, reply(request, parts, now))

    await nc.subscribe("$SYS.REQ.USER.AUTH", cb=on_request)
    await nc.flush()
    return nc


@pytest.mark.parametrize("mode_xkey", list(iter_modes()),
                         ids=lambda p: f"{p[0]}-xkey-{'on' if p[1] else 'off'}")
async def test_server_judges_our_responses(tmp_path: Any, mode_xkey: Any) -> None:
    mode, xkey = mode_xkey
    d = Deployment(tmp_path, mode=mode, xkey=xkey)
    client = d.identity("client")
    d.rules = [{"id": "client", "match": {"source": "nkey", "subject": client.public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x"]}}}]
    d.settings_extra = {"minting": {"max_ttl": "PT12H"}}
    cases = {**CASES, **(OPERATOR_ONLY if mode == "operator" else CONFIG_ONLY)}
    d.start(service=False)
    outcomes: dict[str, bool] = {}
    try:
        parts = build(load_settings(d.settings_file))
        for name, (reply, _) in cases.items():
            nc = await _responder(d, parts, reply)
            try:
                conn = await nats.connect(d.url, nkeys_seed_str=client.seed,
                                          allow_reconnect=False, connect_timeout=5)
                await conn.close()
                outcomes[name] = True
            except (TimeoutError, NatsError):
                outcomes[name] = False
            await nc.close()
    finally:
        d.stop()
    assert outcomes == {name: admitted for name, (_, admitted) in cases.items()}
