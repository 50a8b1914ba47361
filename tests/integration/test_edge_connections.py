"""Connections the rest of the suite does not make, through real nats-servers on loopback.

* Leaf nodes. A second nats-server connects to the hub's leaf node listener with an OIDC
  token in its remote URL, either alone (``nats-leaf://TOKEN@hub``) or as the password
  (``nats-leaf://edge:TOKEN@hub``); nats-server 2.10.26+/2.11 hands both to the callout
  (PR #6492). authsvc sees ``client_info.kind`` ``Leafnode`` (and an empty ``type``), the
  policy places the leaf, and a ``connection_types: [STANDARD]`` rule does not admit it.
* Config-mode ``allowed_accounts`` (nats-server 2.11+, PR #5724), and what the server does
  when authsvc places a user in an account it does not have.
* Token and password clients: what nats-server reports as ``client_info.user`` and that
  neither credential reaches authsvc's audit log or its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.domain import DenyReason
from authsvc.natsconf.keystore import KeyStore
from authsvc.natsconf.process import free_port
from authsvc.protocol import jwt
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey, mint
from tests.support.leaf import leaf_node, leafz, listen_for_leafs
from tests.support.tap import request_tap

KEY = SigningKey.ec("edge-1")
INFO = "$SYS.REQ.USER.INFO"
LEAF_NAME = "edge-leaf"  # the leaf server's server_name, its CONNECT name at the hub
FORMS = ["token", "user-pass"]  # how the leaf's remote URL carries the OIDC token


@dataclass
class Hub:
    d: Deployment
    idp: Issuer
    leaf_port: int
    monitor_port: int

    def token(self, sub: str) -> str:
        return oidc_token(self.idp, sub)

    def principal(self, sub: str) -> str:
        return f"oidc:{self.idp.url}#{sub}"

    def leaf_url(self, token: str, form: str) -> str:
        credentials = token if form == "token" else f"edge:{token}"
        return f"nats-leaf://{credentials}@127.0.0.1:{self.leaf_port}"

    def account_id(self, name: str) -> str:
        """The account as the hub names it: its name, in operator mode its public key."""
        if self.d.mode == "config":
            return name
        return KeyStore(self.d.root / "keys").account(name).public_key


def oidc_token(idp: Issuer, sub: str) -> str:
    now = int(time.time())
    return mint(KEY, {"iss": idp.url, "sub": sub, "aud": "nats", "iat": now, "exp": now + 600})


def oidc_settings(idp: Issuer) -> dict[str, Any]:
    return {"identity": {"oidc": {"issuers": [
        {"issuer": idp.url, "audiences": ["nats"], "allow_http": True}]}}}


def edge_rules(issuer: str) -> list[dict[str, Any]]:
    def oidc(sub: str, *types: str) -> dict[str, Any]:
        return {"source": "oidc", "issuer": issuer, "subject": sub,
                **({"connection_types": list(types)} if types else {})}

    def grant(*extra: str) -> dict[str, Any]:  # a fresh dict each: no YAML anchors
        return {"account": "APP", "publish": {"allow": ["up.>", *extra]},
                "subscribe": {"allow": ["down.>", *(["_INBOX.>"] if extra else [])]}}

    return [
        {"id": "edge-leaf", "match": oidc("leaf-1", "LEAFNODE"), "grant": grant()},
        {"id": "standard-only", "match": oidc("std-1", "STANDARD"), "grant": grant(INFO)},
        {"id": "hub-client", "match": oidc("hub-1", "STANDARD"), "grant": {
            "account": "APP", "publish": {"allow": ["down.>", "side.>", INFO]},
            "subscribe": {"allow": ["up.>", "other.>", "_INBOX.>"]}}},
        {"id": "ops", "match": oidc("ops-1"), "grant": {
            "account": "OPS", "publish": {"allow": [INFO]}, "subscribe": {"allow": ["_INBOX.>"]}}},
        {"id": "gone", "match": oidc("gone-1"), "grant": {"account": "GONE"}},
    ]


@pytest.fixture(scope="module", params=["config", "operator"])
def hub(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with Issuer(keys=[KEY]) as idp:
        leaf_port, monitor_port = free_port(), free_port()
        d = Deployment(tmp_path_factory.mktemp(f"edge-{request.param}"), mode=request.param,
                       config_edit=listen_for_leafs(leaf_port, monitor_port))
        d.settings_extra = oidc_settings(idp)
        d.rules = edge_rules(idp.url)
        d.start()
        try:
            yield Hub(d, idp, leaf_port, monitor_port)
        finally:
            d.stop()


async def new_records(d: Deployment, principal: str, seen: int,
                      timeout: float = 5.0) -> list[dict[str, Any]]:
    """The decision records for ``principal`` after the first ``seen``, at least one."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in d.audit() if r.get("identity", {}).get("principal") == principal]
        if len(found) > seen or time.monotonic() > deadline:
            assert len(found) > seen, f"no new decision for {principal}"
            return found[seen:]
        await asyncio.sleep(0.02)


def count(d: Deployment, principal: str) -> int:
    return sum(1 for r in d.audit() if r.get("identity", {}).get("principal") == principal)


async def auth_error(d: Deployment, cid: int, timeout: float = 5.0) -> dict[str, Any]:
    """The ``nats.auth_error`` record nats-server's advisory for client ``cid`` became."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in d.audit_events():
            if event["type"] == "nats.auth_error" and event["nats_client"].get("id") == cid:
                return event
        await asyncio.sleep(0.02)
    raise AssertionError(f"no nats.auth_error record for cid {cid}")


def assert_never_stored(d: Deployment, secrets_: list[str]) -> None:
    """Neither the audit file nor the service log holds a credential, nor any 16 characters
    of a token's signature (the part that makes a bearer token usable)."""
    stored = {path.name: path.read_bytes() for path in (d.audit_path, d.service_log)}
    for secret in secrets_:
        parts = secret.split(".")
        pieces = [secret]
        if len(parts) == 3:
            pieces += [parts[2][i:i + 16] for i in range(len(parts[2]) - 15)]
        for name, data in stored.items():
            leaked = [piece for piece in pieces if piece.encode() in data]
            assert not leaked, f"{name} holds a credential ({len(leaked)} pieces)"


async def connect(url: str, **options: Any) -> Any:
    return await nats.connect(url, allow_reconnect=False, connect_timeout=5, **options)


async def account_of(nc: Any) -> str:
    reply = await nc.request(INFO, b"", timeout=3)
    name: str = json.loads(reply.data)["data"]["account_name"]
    return name


class Inbox:
    """Subjects delivered to a connection's subscriptions, in order."""

    def __init__(self) -> None:
        self.subjects: asyncio.Queue[str] = asyncio.Queue()

    async def on_msg(self, msg: Any) -> None:
        await self.subjects.put(msg.subject)

    async def until(self, marker: str, timeout: float = 3.0) -> list[str]:
        """Everything delivered up to and including ``marker``, probes left out."""
        got: list[str] = []
        while marker not in got:
            got.append(await asyncio.wait_for(self.subjects.get(), timeout))
        return [s for s in got if ".probe." not in s]


async def until_interest(nc: Any, prefix: str, inbox: Inbox) -> None:
    """Publish ``prefix.probe.N`` until one arrives: leaf interest propagates asynchronously."""
    for attempt in range(100):
        await nc.publish(f"{prefix}.probe.{attempt}", b"")
        await nc.flush()
        with contextlib.suppress(TimeoutError):
            if ".probe." in await asyncio.wait_for(inbox.subjects.get(), 0.05):
                return
    raise AssertionError(f"{prefix}.> never crossed the leaf connection")


@pytest.mark.parametrize("form", FORMS)
async def test_leaf_is_placed_by_policy_and_bridges_only_its_grant(
        hub: Hub, tmp_path: Path, form: str) -> None:
    """The leaf's minted JWT bounds the leaf connection as it bounds a client, from the
    hub's side: ``pub`` is what the leaf may send into APP, ``sub`` what APP sends to the
    leaf. nats-server 2.15.1 enforces both without an error to either side: the hub keeps
    only the leaf's granted subscriptions (``/leafz`` lists ``down.>``, not ``side.>``) and
    forwards it nothing else, and what the leaf publishes outside ``up.>`` never reaches
    the hub's subscribers."""
    d, sent = hub.d, hub.token("leaf-1")
    seen = count(d, hub.principal("leaf-1"))
    async with request_tap(d) as requests:
        with leaf_node(tmp_path, hub.leaf_url(sent, form)) as leaf:
            [record] = await new_records(d, hub.principal("leaf-1"), seen)
            hub_nc = await connect(d.url, token=hub.token("hub-1"))
            leaf_nc = await connect(leaf.url)
            try:
                at_hub, at_leaf = Inbox(), Inbox()
                for subject in ("up.>", "other.>"):
                    await hub_nc.subscribe(subject, cb=at_hub.on_msg)
                for subject in ("down.>", "side.>"):
                    await leaf_nc.subscribe(subject, cb=at_leaf.on_msg)
                await until_interest(leaf_nc, "up", at_hub)
                await until_interest(hub_nc, "down", at_leaf)
                # Outside the grant first, then inside it, each on one path: a message
                # that crossed would arrive before the one after it.
                await leaf_nc.publish("other.x", b"")
                await leaf_nc.publish("up.last", b"")
                await hub_nc.publish("side.x", b"")
                await hub_nc.publish("down.last", b"")
                assert await at_hub.until("up.last") == ["up.last"]
                assert await at_leaf.until("down.last") == ["down.last"]
                [placed] = [c for c in leafz(hub.monitor_port)
                            if c["id"] == record["client"]["cid"]]
            finally:
                await leaf_nc.close()
                await hub_nc.close()
    assert (record["decision"], record["reason"], record["account"], record["rule_ids"]) == (
        "allow", "allowed", "APP", ["edge-leaf"])
    assert (record["client"]["kind"], record["client"]["type"]) == ("Leafnode", "")
    assert record["permissions"] == {"pub": {"allow": ["up.>"], "deny": []},
                                     "sub": {"allow": ["down.>"], "deny": []}}
    assert placed["account"] == hub.account_id("APP")
    assert "down.>" in placed["subscriptions_list"]
    assert "side.>" not in placed["subscriptions_list"]
    info = requests[LEAF_NAME]["client_info"]
    assert (info["kind"], info.get("type", "")) == ("Leafnode", "")
    # nats-server 2.15.1 sends a token-only remote URL as CONNECT user *and* auth_token
    # (leafnode.go, for backward compatibility), so client_info.user is the bearer token
    # itself, not "[REDACTED]". authsvc never records it (authsvc/audit/ingest.py).
    assert info["user"] == (sent if form == "token" else "edge")
    assert_never_stored(d, [sent])


@pytest.mark.parametrize("form", FORMS)
async def test_standard_only_rule_does_not_admit_a_leaf(hub: Hub, tmp_path: Path,
                                                        form: str) -> None:
    """The rule for std-1 allows only STANDARD connections: the same token admits a client
    but not a leaf. The refusal reaches the audit twice, as authsvc's decision and as the
    server's advisory. For a token-only URL that advisory names the token itself as the
    client's user; the audit keeps neither."""
    d, sent = hub.d, hub.token("std-1")
    seen = count(d, hub.principal("std-1"))
    with leaf_node(tmp_path, hub.leaf_url(sent, form)):
        first = (await new_records(d, hub.principal("std-1"), seen))[0]
        assert (first["decision"], first["reason"], first["client"]["kind"]) == (
            "deny", DenyReason.CONNECTION_NOT_ALLOWED, "Leafnode")
        event = await auth_error(d, first["client"]["cid"])
        connected = [c["id"] for c in leafz(hub.monitor_port)]
    assert first["client"]["cid"] not in connected
    assert event["nats_client"]["kind"] == "Leafnode"
    assert event["nats_reason"].endswith(": " + DenyReason.CONNECTION_NOT_ALLOWED)
    assert_never_stored(d, [sent])
    assert "user" not in event["nats_client"]
    nc = await connect(d.url, token=sent)
    try:
        assert await account_of(nc) == "APP"
    finally:
        await nc.close()


async def test_token_and_password_clients_leave_no_credential_behind(hub: Hub) -> None:
    """What nats-server 2.15.1 reports as client_info.user: "[REDACTED]" for a token client
    in config mode, the default sentinel's public key in operator mode (the client had no
    JWT of its own), and the CONNECT user for a user/password client. authsvc's decision
    records carry no user at all, its auth error records drop the advisory's, and no token,
    password or piece of a signature ends up in the audit file or the service log."""
    d = hub.d
    allowed, refused = hub.token("std-1"), hub.token("nobody")
    opaque = "opaque-" + secrets.token_urlsafe(24)
    clients: dict[str, dict[str, Any]] = {
        "token-allowed": {"token": allowed},
        "password-allowed": {"user": "alice", "password": hub.token("std-1")},
        "token-refused": {"token": refused},
        "password-refused": {"user": "bob", "password": opaque},
    }
    before = len(d.audit())
    async with request_tap(d) as requests:
        for name, credentials in clients.items():
            try:
                nc = await connect(d.url, name=name, **credentials)
            except NatsError:
                continue
            await nc.close()
        records = await asyncio.to_thread(d.wait_audit, before + len(clients))
    decisions = {r["client"]["name"]: r for r in records[before:]}
    assert {name: (r["decision"], r["reason"]) for name, r in decisions.items()} == {
        "token-allowed": ("allow", "allowed"),
        "password-allowed": ("allow", "allowed"),
        "token-refused": ("deny", DenyReason.NO_MATCHING_RULE),
        "password-refused": ("deny", DenyReason.TOKEN_MALFORMED),
    }
    for name in ("token-refused", "password-refused"):
        event = await auth_error(d, decisions[name]["client"]["cid"])
        assert "user" not in event["nats_client"]
    assert all("user" not in r["client"] for r in decisions.values())
    users = {name: requests[name]["client_info"].get("user") for name in clients}
    token_user = "[REDACTED]" if d.mode == "config" else sentinel_key(requests["token-allowed"])
    assert users == {"token-allowed": token_user, "password-allowed": "alice",
                     "token-refused": token_user, "password-refused": "bob"}
    assert_never_stored(d, [allowed, refused, clients["password-allowed"]["password"], opaque])


def sentinel_key(request: dict[str, Any]) -> str:
    """Operator mode: the public key of the default sentinel the server put in CONNECT."""
    _, claims = jwt.decode_unverified(request["connect_opts"]["jwt"])
    assert claims["name"] == "sentinel"
    return str(claims["sub"])


@pytest.fixture
def allowed_accounts(tmp_path: Path) -> Iterator[tuple[Deployment, Issuer, str]]:
    """Config mode with ``allowed_accounts: [APP]``, a local user in LOCAL (password
    returned), and no GONE account although the policy grants it."""
    password = secrets.token_urlsafe(18)

    def edit(body: dict[str, Any]) -> None:
        del body["accounts"]["GONE"]
        body["accounts"]["LOCAL"] = {"users": [{"user": "local", "password": password}]}
        body["authorization"]["auth_callout"]["allowed_accounts"] = ["APP"]

    with Issuer(keys=[KEY]) as idp:
        d = Deployment(tmp_path, mode="config", config_edit=edit)
        d.settings_extra = oidc_settings(idp)
        d.rules = edge_rules(idp.url)
        d.start()
        try:
            yield d, idp, password
        finally:
            d.stop()


async def test_config_mode_allowed_accounts_exempts_local_users_never_placement(
        allowed_accounts: tuple[Deployment, Issuer, str]) -> None:
    """Config mode, nats-server 2.15.1: ``allowed_accounts`` names the accounts whose
    locally authenticated users still go to the callout. A user that logs in locally to
    any other account skips the callout, and authsvc never hears of it; a wrong password
    falls through to the callout. It does not bound where the callout places users: OPS,
    not listed, is admitted. So ``nats-config`` does not emit it (it could only loosen).
    The only placement check in config mode is that the account exists: a grant into an
    account the server lacks is allowed by authsvc and refused by the server, and the
    server's advisory is the audit's evidence of it."""
    d, idp, password = allowed_accounts
    placed = {}
    for name, credentials in [("ops", {"token": oidc_token(idp, "ops-1")}),
                              ("local", {"user": "local", "password": password})]:
        nc = await connect(d.url, name=name, **credentials)
        try:
            placed[name] = await account_of(nc)
        finally:
            await nc.close()
    with pytest.raises(NatsError):
        await connect(d.url, name="local-wrong", user="local", password="not-" + password)
    with pytest.raises(NatsError):
        await connect(d.url, name="gone", token=oidc_token(idp, "gone-1"))
    records = await asyncio.to_thread(d.wait_audit, 3)
    event = await auth_error(d, records[-1]["client"]["cid"])
    assert placed == {"ops": "OPS", "local": "LOCAL"}
    assert [(r["client"]["name"], r["decision"], r["reason"], r.get("account"))
            for r in records] == [
        ("ops", "allow", "allowed", "OPS"),
        ("local-wrong", "deny", DenyReason.TOKEN_MALFORMED, None),
        ("gone", "allow", "allowed", "GONE"),
    ]
    # nats-server's own words (auth_callout.go assignAccountAndPermissions); it has no codes.
    assert event["nats_reason"] == ('No valid account "GONE" for auth callout response on '
                                    'account "AUTH": account missing')
    assert_never_stored(d, [password])
