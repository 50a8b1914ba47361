"""The callout core end to end, through a real nats-server, in every deployment mode."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any, NamedTuple

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.clock import SystemClock
from authsvc.domain import DenyReason
from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.server import connect as service_connect
from authsvc.settings import load_settings
from tests.integration.conftest import INFO
from tests.support.callout import FakeServer, forge_request, make_request_claims, sign_request
from tests.support.deploy import Deployment
from tests.support.probe import CALLOUT_SUBJECT
from tests.support.rawnats import raw_connect


async def connect(d: Deployment, who: str, errors: list[str] | None = None, **kw: Any) -> Any:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc).lower())

    return await nats.connect(d.url, nkeys_seed_str=d.identity(who).seed, error_cb=on_error,
                              allow_reconnect=False, connect_timeout=5, **kw)


def records_for(d: Deployment, principal: str) -> list[dict[str, Any]]:
    return [r for r in d.audit() if r.get("identity", {}).get("principal") == principal]


async def last_record(d: Deployment, name: str) -> dict[str, Any]:
    principal = f"nkey:{d.identity(name).public_key}"
    for _ in range(100):
        found = records_for(d, principal)
        if found:
            return found[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no audit record for {name}")


async def test_admitted_client_lands_in_account_with_exact_permissions(d_: Deployment) -> None:
    nc = await connect(d_, "writer")
    try:
        info = json.loads((await nc.request(INFO, b"", timeout=3)).data)["data"]
    finally:
        await nc.close()
    assert info["account_name"] == "APP"
    if d_.mode == "operator":
        assert info["account"] == KeyStore(d_.root / "keys").account("APP").public_key
    publish, subscribe = info["permissions"]["publish"], info["permissions"]["subscribe"]
    assert set(publish) == {"allow"}  # an empty deny list is not shown
    assert sorted(publish["allow"]) == sorted(["orders.v2.created", INFO])
    assert sorted(subscribe["allow"]) == ["_INBOX.>", "orders.v2.>"]
    assert subscribe["deny"] == ["orders.v2.secret"]
    assert 0 < info["expires"] <= 600 * 1_000_000_000


async def test_publish_inside_grant_delivered_outside_refused(d_: Deployment) -> None:
    errors: list[str] = []
    nc = await connect(d_, "writer", errors)
    got: asyncio.Queue[str] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        await got.put(msg.subject)

    await nc.subscribe("orders.v2.>", cb=on_msg)
    await nc.publish("orders.v2.created", b"1")
    await nc.publish("payments.refund", b"2")
    await nc.flush()
    assert await asyncio.wait_for(got.get(), 3) == "orders.v2.created"
    await asyncio.sleep(0.2)
    await nc.close()
    assert any('permissions violation for publish to "payments.refund"' in e for e in errors)


async def test_subscribe_only_grant_cannot_publish_anything(d_: Deployment) -> None:
    errors: list[str] = []
    nc = await connect(d_, "reader", errors)
    await nc.publish("orders.v2.created", b"x")
    await nc.flush()
    await asyncio.sleep(0.2)
    await nc.close()
    assert any("permissions violation for publish" in e for e in errors)
    record = await last_record(d_, "reader")
    assert record["permissions"]["pub"] == {"allow": [], "deny": [">"]}


async def test_second_account_placement(d_: Deployment) -> None:
    nc = await connect(d_, "ops")
    try:
        info = json.loads((await nc.request(INFO, b"", timeout=3)).data)["data"]
    finally:
        await nc.close()
    assert info["account_name"] == "OPS"


@pytest.mark.parametrize(("name", "reason"), [
    ("stranger", DenyReason.NO_MATCHING_RULE),
    ("blocked", DenyReason.EXPLICIT_DENY),
])
async def test_refused_identities_are_denied_with_reason(d_: Deployment, name: str,
                                                         reason: DenyReason) -> None:
    with pytest.raises(NatsError):
        await connect(d_, name)
    record = await last_record(d_, name)
    assert record["decision"] == "deny"
    assert record["reason"] == reason


async def test_no_credentials_is_denied(d_: Deployment) -> None:
    before = len(d_.audit())
    with pytest.raises(NatsError):
        await nats.connect(d_.url, allow_reconnect=False, connect_timeout=5)
    records = d_.wait_audit(before + 1)
    assert records[-1]["reason"] == DenyReason.NO_CREDENTIALS


@pytest.mark.parametrize(("forge", "reason"), [
    ("other-key", DenyReason.NKEY_SIGNATURE_INVALID),
    ("garbage", DenyReason.CREDENTIALS_MALFORMED),
])
async def test_nkey_without_proof_of_possession_is_denied(d_: Deployment, forge: str,
                                                         reason: DenyReason) -> None:
    victim = d_.identity("writer").public_key
    thief = KeyPair.create(Prefix.USER)

    def build(info: dict[str, Any]) -> dict[str, Any]:
        nonce = info["nonce"].encode()
        sig = base64.b64encode(thief.sign(nonce)).decode() if forge == "other-key" else "!!"
        return {"nkey": victim, "sig": sig}

    before = len(d_.audit())
    reply = await raw_connect("127.0.0.1", d_.port, build)
    assert reply.startswith("-ERR")
    records = d_.wait_audit(before + 1)
    assert records[-1]["reason"] == reason
    assert records[-1]["decision"] == "deny"


async def test_raw_url_base64_signature_is_accepted(d_: Deployment) -> None:
    writer = d_.identity("writer")

    def build(info: dict[str, Any]) -> dict[str, Any]:
        sig = base64.urlsafe_b64encode(writer.sign(info["nonce"].encode())).rstrip(b"=")
        return {"nkey": writer.public_key, "sig": sig.decode()}

    assert await raw_connect("127.0.0.1", d_.port, build) == "PONG"


async def test_client_is_disconnected_at_exp(d_: Deployment) -> None:
    closed = asyncio.Event()
    errors: list[str] = []

    async def on_closed() -> None:
        closed.set()

    started = time.monotonic()
    nc = await connect(d_, "short", errors, closed_cb=on_closed)
    await asyncio.wait_for(closed.wait(), 6)
    lived = time.monotonic() - started
    assert not nc.is_connected
    assert 0.5 < lived < 4.0
    assert "authentication expired" in str(nc.last_error).lower()


async def test_allow_is_audited_with_the_decision_facts(d_: Deployment) -> None:
    nc = await connect(d_, "writer", name="writer-app")
    await nc.close()
    record = await last_record(d_, "writer")
    assert record["decision"] == "allow"
    assert record["reason"] == "allowed"
    assert record["account"] == "APP"
    assert record["rule_ids"] == ["writer"]
    assert record["server"]["name"] == f"test-{d_.mode}"
    assert record["server"]["version"].startswith("2.15")
    assert record["server_id"].startswith("N")
    assert record["user_nkey"].startswith("U")
    assert record["client"]["host"] == "127.0.0.1"
    assert record["client"]["name"] == "writer-app"
    assert record["client"]["cid"] > 0
    assert record["sealed"] is d_.xkey
    assert record["jwt"]["jti"] and record["jwt"]["exp"]
    assert len(record["policy_revision"]) == 64
    assert record["latency_ms"] > 0
    assert d_.identity("writer").seed not in d_.audit_path.read_text()


async def test_auth_error_event_carries_only_the_reason_code(d_: Deployment) -> None:
    """Mirrors TestAuthCalloutAuthErrEvents: the server reports our error text."""
    settings = load_settings(d_.settings_file)
    svc = await service_connect(settings, KeyStore(settings.keys.dir))
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_event(msg: Any) -> None:
        await events.put(json.loads(msg.data))

    await svc.subscribe("$SYS.ACCOUNT.CLIENT.AUTH.ERR", cb=on_event)
    await svc.flush()
    with pytest.raises(NatsError):
        await connect(d_, "stranger")
    event = await asyncio.wait_for(events.get(), 3)
    await svc.close()
    assert event["reason"].endswith(": " + DenyReason.NO_MATCHING_RULE)


async def test_callout_account_clients_cannot_publish_requests(d_: Deployment) -> None:
    """Why tests/support/probe.py exists: nats-server denies every client in the callout
    account, the service itself included, publishing on the callout subject (auth.go
    mergeDenyPermissions; nats-server#7030). Were that to change, any such client could
    hand authsvc forged requests."""
    settings = load_settings(d_.settings_file)
    svc = await service_connect(settings, KeyStore(settings.keys.dir))
    try:
        await svc.publish(CALLOUT_SUBJECT, b"eyJ")
        await svc.flush()
        for _ in range(100):  # the -ERR is handled after the PONG at times
            if svc.last_error is not None:
                break
            await asyncio.sleep(0.01)
        error = str(svc.last_error).lower()
    finally:
        await svc.close()
    assert f'permissions violation for publish to "{CALLOUT_SUBJECT.lower()}"' in error


class Crafted(NamedTuple):
    payload: bytes
    headers: dict[str, str]
    reason: DenyReason
    reply_to: FakeServer | None  # who the error reply is addressed to; None = dropped
    user_nkey: str  # as audited: "" when nothing verified names one
    sealed: bool = False  # the reply is sealed (to reply_to's xkey)


def _crafted(d: Deployment) -> dict[str, Crafted]:
    """Requests built like nats-server's own (tests/support/callout.py), sealed to the
    service's xkey when the deployment uses one, so each reaches the check it bends."""
    xkey = KeyStore(d.root / "keys").xkey().public_key if d.xkey else None
    sealed = xkey is not None
    now = SystemClock().now()
    server, impostor = FakeServer.create(), FakeServer.create()

    def claims(by: FakeServer = server, *, seal: bool = sealed) -> dict[str, Any]:
        return make_request_claims(by, now=now, sealed=seal)

    def user(c: dict[str, Any]) -> str:
        return str(c["nats"]["user_nkey"])

    forged, expired, misaddressed, spoofed = claims(), claims(), claims(), claims(impostor)
    expired["exp"] = int(now.timestamp()) - 300
    misaddressed["aud"] = "someone-else"
    spoofed["nats"]["server_id"]["id"] = server.id  # signed by impostor in server's name
    cases = {
        # Only a verified signature makes a request addressable: no reply at all.
        "forged": Crafted(*forge_request(forged, server, forger=impostor.signer,
                                         service_xkey=xkey),
                          DenyReason.REQUEST_BAD_SIGNATURE, None, ""),
        "expired": Crafted(*sign_request(expired, server, service_xkey=xkey),
                           DenyReason.REQUEST_EXPIRED, server, user(expired), sealed),
        "wrong-aud": Crafted(*sign_request(misaddressed, server, service_xkey=xkey),
                             DenyReason.REQUEST_MISADDRESSED, server, user(misaddressed), sealed),
        # The reply goes to the key that really signed, never to the one it names.
        "not-server-id": Crafted(*sign_request(spoofed, impostor, service_xkey=xkey),
                                 DenyReason.REQUEST_MISADDRESSED, impostor, user(spoofed),
                                 sealed),
    }
    if sealed:
        # docs/configuration.md: plaintext while keys.xkey is on is refused; the signature
        # verifies, so the refusal is answered, in plaintext as the request came.
        plain = claims(seal=False)
        cases["plaintext"] = Crafted(*sign_request(plain, server), DenyReason.XKEY_REQUIRED,
                                     server, user(plain))
    return cases


async def test_crafted_requests_are_refused_audited_and_answered_as_documented(
        probed: Deployment) -> None:
    """Forged, expired, misaddressed and (xkey on) plaintext requests, through the server to
    the running authsvc (tests/unit/test_service.py has such cases without a server).
    service.invalid_request is `reply` here (docs/configuration.md): a refused request whose
    signature verifies gets a signed error carrying the reason code; a forgery cannot be
    addressed and is dropped. Each is audited, and authsvc goes on admitting clients."""
    cases = _crafted(probed)
    keys = KeyStore(probed.root / "keys")
    listener = await service_connect(load_settings(probed.settings_file), keys)
    assert probed.probe is not None, "probed deployments carry the probe"
    probe = await probed.probe.connect(probed.url, probed.mode)
    replies: dict[str, bytes] = {}
    expected = {name for name, case in cases.items() if case.reply_to is not None}
    answered = asyncio.Event()

    async def on_reply(msg: Any) -> None:
        replies[msg.subject.rsplit(".", 1)[-1]] = msg.data
        if expected <= replies.keys():
            answered.set()

    inbox = listener.new_inbox()
    await listener.subscribe(f"{inbox}.*", cb=on_reply)
    await listener.flush()
    before = len(probed.audit())
    try:
        for name, case in cases.items():  # the forgery goes first
            await probe.publish(CALLOUT_SUBJECT, case.payload, reply=f"{inbox}.{name}",
                                headers=case.headers or None)
        await probe.flush()
        records = probed.wait_audit(before + len(cases))[before:]
        with contextlib.suppress(TimeoutError):  # the assertion below names what is missing
            await asyncio.wait_for(answered.wait(), 3)
        # authsvc audits, then answers; the forgery was audited before the last answer
        # arrived, so a reply to it would be here by now.
        await listener.flush()
    finally:
        await probe.close()
        await listener.close()
    assert sorted((r["user_nkey"], r["reason"], r["decision"]) for r in records) == sorted(
        (case.user_nkey, case.reason, "deny") for case in cases.values())
    assert sorted(replies) == sorted(expected)
    opened = {}
    for name, data in replies.items():
        to = cases[name].reply_to
        assert to is not None
        sealed = not data.startswith(b"eyJ")
        response = jwt.decode(to.curve.open(data, keys.xkey().public_key) if sealed else data)
        opened[name] = (sealed, response["iss"], response["aud"], response["sub"],
                        response["nats"].get("error"), "jwt" in response["nats"])
    assert opened == {  # jwt.decode verified each signature against its iss
        name: (case.sealed, keys.issuer().public_key, case.reply_to.id, case.user_nkey,
               case.reason, False)
        for name, case in cases.items() if case.reply_to is not None}
    nc = await connect(probed, "writer")
    await nc.close()
    last = probed.wait_audit(before + len(cases) + 1)[-1]
    assert (last["decision"], last["identity"]["principal"]) == (
        "allow", f"nkey:{probed.identity('writer').public_key}")


@pytest.fixture
def d_(deployment: Deployment) -> Deployment:
    return deployment
