"""Our response encoder, judged by nats-server itself.

A responder built from authsvc's own codec answers the server, each time bending one thing
the server checks (nats-server's ``server/auth_callout.go``; its
auth_callout_test.go: BadUser, BadServer, ExpiredUser, ExpiredResponse, ErrorResponse,
ServerConfigEncryption, OperatorModeBasics). The untampered case proves the harness
admits clients at all. A refusal only counts when the responder sent exactly one reply and
the server's ``$SYS.ACCOUNT.CLIENT.AUTH.ERR`` advisory names the check the case was built
to trip (as TestAuthCalloutAuthErrEvents reads it): a responder that crashes, or a server
that merely timed the client out, cannot pass for a rejection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.audit.ingest import AUTH_ERROR_SUBJECT
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


# What nats-server says on $SYS.ACCOUNT.CLIENT.AUTH.ERR when it refuses each case
# (auth_callout.go processReply/decodeResponse, as nats-server 2.15.1 words it). The server
# has no reason codes: its text is the only evidence of which check fired, and a timeout
# (nothing answered in time) carries an empty reason (callout-protocol.md 1.8). None = admitted.
# {issuer}: our issuer (in operator mode the callout account's key); {foreign}: FOREIGN_ISSUER;
# {sys}: the operator-mode SYS account.
NOT_FOR_USER = "Auth callout violation: auth callout response is not for expected user"
NOT_FOR_SERVER = "Auth callout violation: auth callout response is not for server"
USER_EXPIRED = "Error validating user JWT: claim is expired"
RESPONSE_EXPIRED = "Authorization response had validation errors: claim is expired"
SERVICE_ERROR = "Auth callout service returned an error: no_matching_rule"
WRONG_ISSUER = ('Wrong issuer for auth callout response on account "AUTH", '
                'expected "{issuer}" got "{foreign}"')
UNKNOWN_SIGNER = "Auth callout signing key is unknown"
NOT_PERMITTED = ('Account "{sys}" not permitted as valid account option for auth callout '
                 'for account "{issuer}"')

CASES: dict[str, tuple[Reply, str | None]] = {
    "none": (lambda r, p, n: _respond(r, p, n), None),
    "wrong-user": (lambda r, p, n: _respond(
        r, p, n, address=_address(r, user_nkey=KeyPair.create(Prefix.USER).public_key)),
        NOT_FOR_USER),
    "wrong-server": (lambda r, p, n: _respond(
        r, p, n, address=_address(r, server_id=KeyPair.create(Prefix.SERVER).public_key)),
        NOT_FOR_SERVER),
    "expired-user": (lambda r, p, n: _respond(
        r, p, n, user_jwt=_mint(r, p, n - timedelta(hours=13))), USER_EXPIRED),
    "expired-response": (lambda r, p, n: _respond(
        r, p, n - timedelta(minutes=5), user_jwt=_mint(r, p, n)), RESPONSE_EXPIRED),
    "error": (lambda r, p, n: _respond(r, p, n, error="no_matching_rule"), SERVICE_ERROR),
    "plaintext-reply": (lambda r, p, n: _respond(r, p, n, sealed=False), None),
}
FOREIGN_ISSUER = KeyPair.create(Prefix.ACCOUNT)


def _foreign_user_jwt(request: ConnectRequest, parts: Components, now: datetime) -> bytes:
    minter = Minter(mode=Mode.CONFIG, issuer=FOREIGN_ISSUER, lifetime=parts.minter.lifetime)
    return _respond(request, parts, now, user_jwt=_mint(request, parts, now, minter))


CONFIG_ONLY: dict[str, tuple[Reply, str | None]] = {
    "user-jwt-wrong-issuer": (_foreign_user_jwt, WRONG_ISSUER),
    # A plaintext response must be signed by the issuer. A sealed one is not checked: the
    # server treats possession of the xkey as authentication.
    "response-wrong-signer-plaintext": (lambda r, p, n: _respond(
        r, p, n, signer=KeyPair.create(Prefix.ACCOUNT), sealed=False), UNKNOWN_SIGNER),
}
OPERATOR_ONLY: dict[str, tuple[Reply, str | None]] = {
    "account-not-allowed": (_other_account, NOT_PERMITTED)}


class Responder:
    """Answers the callout with ``reply`` (swapped per case), counting the replies it sent,
    and collects the server's auth error advisories by client name."""

    def __init__(self, nc: Any, parts: Components) -> None:
        self.nc, self.parts = nc, parts
        self.reply: Reply | None = None
        self.sent = 0
        self.advisories: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @classmethod
    async def start(cls, d: Deployment, parts: Components) -> Responder:
        self = cls(await connect(load_settings(d.settings_file), parts.keys), parts)
        await self.nc.subscribe("$SYS.REQ.USER.AUTH", cb=self._on_request)
        await self.nc.subscribe(AUTH_ERROR_SUBJECT, cb=self._on_advisory)
        await self.nc.flush()
        return self

    async def _on_request(self, msg: Any) -> None:
        assert self.reply is not None
        now = SystemClock().now()
        request = decode_request(msg.data, msg.headers, now=now, rules=self.parts.rules)
        await self.nc.publish(msg.reply, self.reply(request, self.parts, now))
        self.sent += 1

    async def _on_advisory(self, msg: Any) -> None:
        await self.advisories.put(json.loads(msg.data))

    async def judge(self, name: str, reply: Reply, url: str, seed: str) -> tuple[bool, int, str]:
        """(admitted, replies sent, the server's reason for refusing; "" when admitted)."""
        self.reply, self.sent = reply, 0
        try:
            conn = await nats.connect(url, nkeys_seed_str=seed, name=name,
                                      allow_reconnect=False, connect_timeout=5)
        except NatsError:  # the server's "Authorization Violation"
            return False, self.sent, await self._reason(name)
        admitted = bool(conn.is_connected)
        await conn.close()
        return admitted, self.sent, "" if admitted else await self._reason(name)

    async def _reason(self, name: str) -> str:
        while True:
            event = await asyncio.wait_for(self.advisories.get(), 3)
            if event["client"].get("name") == name:
                return str(event["reason"])


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
    outcomes: dict[str, tuple[bool, int, str]] = {}
    try:
        parts = build(load_settings(d.settings_file))
        responder = await Responder.start(d, parts)
        for name, (reply, _) in cases.items():
            outcomes[name] = await responder.judge(name, reply, d.url, client.seed)
        await responder.nc.close()
    finally:
        d.stop()
    keys = {"issuer": parts.minter.issuer.public_key, "foreign": FOREIGN_ISSUER.public_key}
    if mode == "operator":
        keys["sys"] = parts.keys.account("SYS").public_key
    # Every case was answered exactly once by the responder, and each refusal names the
    # server check the crafted response was built to trip, not a timeout.
    assert outcomes == {name: (reason is None, 1, (reason or "").format(**keys))
                        for name, (_, reason) in cases.items()}
