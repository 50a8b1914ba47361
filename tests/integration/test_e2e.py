"""The callout core end to end, through a real nats-server, in every deployment mode."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.domain import DenyReason
from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.integration.conftest import INFO
from tests.support.deploy import Deployment
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
    from authsvc.server import connect as service_connect
    from authsvc.settings import load_settings

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


@pytest.fixture
def d_(deployment: Deployment) -> Deployment:
    return deployment
