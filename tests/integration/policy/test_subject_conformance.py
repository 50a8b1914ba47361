"""``policy.access`` against a real nats-server: what the model says equals what the server does.

Each permission set becomes a config-file user (the server applies the same permission code to
config users and to users from callout JWTs: ``client.go setPermissions``), and every probe is
tried for real: SUB and PUB answer with ``-ERR 'Permissions Violation ...'`` or nothing;
delivery is checked by publishing as an unrestricted user. Includes two quirks of
nats-server: a ``*`` allow accepts a ``>`` subscription (which then receives every deeper
subject), and a deny does not refuse a broader wildcard subscription but filters delivery.
The ``sealed`` sets carry the denies ``access.seals`` adds to every grant (``merge.with_seals``):
the server must refuse the deeper subjects to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from authsvc.domain import Permissions, SubjectPermission
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.policy.access import can_publish, can_receive, can_subscribe, seals

pytestmark = pytest.mark.integration


def sealed(allow: list[str], deny: list[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """A subscribe-only set with the denies ``merge.with_seals`` would add."""
    added = seals(SubjectPermission(tuple(allow), tuple(deny)))
    assert added, "a sealed set must exercise a seal"
    return [], [], allow, [*deny, *added]


# name -> (pub allow, pub deny, sub allow, sub deny), and the probes to try with it.
SETS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "star": ([], [], ["orders.*"], []),
    "deny-inside": (["orders.>"], ["orders.secret.>"], ["orders.>"], ["orders.secret.>"]),
    "exact": (["orders.v2.created"], [], ["_INBOX_ab12.>"], []),
    "star-deny": ([], [], ["a.*.c"], ["a.b.c"]),
    # a tenant grant with a guardrail, as merged before and after sealing
    "tenant": ([], [], ["tenants.acme.*"], ["tenants.*.secret"]),
    "tenant-sealed": sealed(["tenants.acme.*"], ["tenants.*.secret"]),
    "inner": ([], [], ["a.*.*"], []),
    "inner-sealed": sealed(["a.*.*"], []),
    "root": ([], [], ["*"], []),
    "root-sealed": sealed(["*"], []),
    # P.* beside a deeper allow under P stays unsealed; a.b.* is sealed beside a.*
    "deeper": ([], [], ["tenants.acme.*", "tenants.acme.public.>"], []),
    "nested-sealed": sealed(["a.*", "a.b.*"], []),
    "deny-star": ([], [], ["t.*.*"], ["t.acme.*"]),
}
SUBSCRIBE = ["orders.>", "orders.x", "orders.a.b", "orders.*", "orders.secret.x", "orders.secret.>",
             "_INBOX.>", "_INBOX_ab12.r1", "_INBOX_ab12.*", "*.>", ">", "a.*.c", "a.b.c", "a.x.c",
             "a.>", "tenants.acme.>", "tenants.>", "tenants.acme.*", "a.*.>", "a.x.>", "t.acme.>",
             "t.*.>", "tenants.acme.public.>"]
PUBLISH = ["orders.v2.created", "orders.v2.deleted", "orders.secret.x", "orders.x", "a.b.c"]
# Literal subjects published to every set, each also subscribed to literally.
RECEIVE = ["orders.x", "orders.a.b", "orders.secret.x", "a.b", "a.b.c", "a.x.c", "a.b.c.d",
           "a.c.d", "tenants.acme.orders", "tenants.acme.orders.private.payroll",
           "tenants.acme.secret", "tenants.acme.secret.db-password", "tenants.acme.public.x",
           "tenants.beta.x", "t.acme.x", "t.acme.x.y", "x", "x.y.z", "_INBOX_ab12.r1"]


def _permissions(name: str) -> Permissions:
    pub_allow, pub_deny, sub_allow, sub_deny = SETS[name]
    return Permissions(pub=SubjectPermission(tuple(pub_allow), tuple(pub_deny)),
                       sub=SubjectPermission(tuple(sub_allow), tuple(sub_deny)))


def _block(allow: list[str], deny: list[str]) -> dict[str, list[str]]:
    # As the minter writes it: no allow entries means deny everything, explicitly.
    return {"allow": allow, "deny": deny} if allow else {"deny": [">"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    port = free_port()
    users = [{"user": "admin", "password": "admin"}] + [
        {"user": name, "password": name, "permissions": {
            "publish": _block(pub_allow, pub_deny), "subscribe": _block(sub_allow, sub_deny)}}
        for name, (pub_allow, pub_deny, sub_allow, sub_deny) in SETS.items()]
    config: Path = tmp_path_factory.mktemp("conformance") / "nats.conf"
    config.write_text(f"listen: 127.0.0.1:{port}\nauthorization: "
                      + json.dumps({"users": users}) + "\n")
    with NatsServer(config, port=port) as running:
        yield running


async def _refused(url: str, user: str, action: str, subject: str) -> bool:
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(url, user=user, password=user, error_cb=on_error,
                            allow_reconnect=False)
    try:
        if action == "sub":
            await nc.subscribe(subject)
        else:
            await nc.publish(subject, b"x")
        # The -ERR for our SUB/PUB arrives before the PONG; nats-py hands it to error_cb (and
        # last_error) lower-cased and keeps the connection open.
        with contextlib.suppress(nats.errors.Error):
            await nc.flush(timeout=2)
        await asyncio.sleep(0.02)
    finally:
        await nc.close()
    seen = [*errors, nc.last_error]
    return any("permissions violation" in str(error).lower() for error in seen if error)


async def test_subscribe_matches_the_server(server: NatsServer) -> None:
    disagreements = []
    for name in SETS:
        for subject in SUBSCRIBE:
            server_says = not await _refused(server.url, name, "sub", subject)
            if server_says != can_subscribe(_permissions(name), subject):
                disagreements.append((name, "sub", subject, server_says))
    assert disagreements == []


async def test_publish_matches_the_server(server: NatsServer) -> None:
    disagreements = []
    for name in SETS:
        for subject in PUBLISH:
            server_says = not await _refused(server.url, name, "pub", subject)
            if server_says != can_publish(_permissions(name), subject):
                disagreements.append((name, "pub", subject, server_says))
    assert disagreements == []


async def _first_delivered(url: str, user: str, subscription: str,
                           subjects: list[str]) -> str:
    """Publish ``subjects`` in order from one connection; the first one delivered.

    Messages from one publisher arrive in order, so if the last (allowed) subject is the
    first to arrive, every subject before it was filtered: no timing guess involved.
    """
    nc = await nats.connect(url, user=user, password=user, allow_reconnect=False)
    admin = await nats.connect(url, user="admin", password="admin")
    try:
        sub = await nc.subscribe(subscription)
        await nc.flush()
        for _attempt in range(3):
            # Rarely (seen only under a full, loaded suite run) a first publish is never
            # delivered; publishing the same ordered pair again keeps the check exact.
            for subject in subjects:
                await admin.publish(subject, b"x")
            await admin.flush()
            try:
                msg = await sub.next_msg(timeout=3)
            except nats.errors.TimeoutError:
                continue
            return str(msg.subject)
        raise AssertionError("no message delivered to an allowed subscription")
    finally:
        await nc.close()
        await admin.close()


@pytest.mark.parametrize(("name", "subscription", "subjects"), [
    ("deny-inside", "orders.>", ["orders.secret.x", "orders.public.x"]),
    ("star-deny", "a.*.c", ["a.b.c", "a.x.c"]),
])
async def test_delivery_filter_matches_the_server(server: NatsServer, name: str,
                                                  subscription: str, subjects: list[str]) -> None:
    permissions = _permissions(name)
    assert can_subscribe(permissions, subscription)  # the quirk: the broad SUB is accepted
    assert [can_receive(permissions, subject) for subject in subjects] == [False, True]
    # The server agrees when the denied subject never arrives before the allowed one.
    assert await _first_delivered(server.url, name, subscription, subjects) == subjects[1]


def test_the_quirks_are_among_the_probes() -> None:
    assert can_subscribe(_permissions("star"), "orders.>")
    assert "orders.>" in SUBSCRIBE


async def _delivered(url: str, user: str, subjects: list[str]) -> set[str]:
    """What reaches ``user`` subscribed to every probe (the refused ones drop out) when the
    admin publishes each of ``subjects``.

    The admin's flush returns once the server has handled every PUB, which puts each
    delivery in the subscriber's outbound buffer before the PONG to its own flush; anything
    not there by then was not delivered. A rare lost first publish under load (see
    ``_first_delivered``) only ever removes subjects, so publishing again and taking the union
    keeps the check exact; extra deliveries are what it looks for.
    """
    got: set[str] = set()

    async def on_msg(msg: Any) -> None:
        got.add(str(msg.subject))

    async def on_error(_exc: Exception) -> None:
        pass  # the refused subscriptions; can_subscribe is checked on its own

    nc = await nats.connect(url, user=user, password=user, error_cb=on_error,
                            allow_reconnect=False)
    admin = await nats.connect(url, user="admin", password="admin")
    try:
        for subject in [*SUBSCRIBE, *RECEIVE]:
            await nc.subscribe(subject, cb=on_msg)
        with contextlib.suppress(nats.errors.Error):
            await nc.flush(timeout=2)
        for _attempt in range(2):
            for subject in subjects:
                await admin.publish(subject, b"x")
            await admin.flush()
            await nc.flush()
            await asyncio.sleep(0.05)
        return got
    finally:
        await nc.close()
        await admin.close()


@pytest.mark.parametrize("name", list(SETS))
async def test_receive_matches_the_server(server: NatsServer, name: str) -> None:
    server_says = await _delivered(server.url, name, RECEIVE)
    model_says = {subject for subject in RECEIVE if can_receive(_permissions(name), subject)}
    assert server_says == model_says


@pytest.mark.parametrize(("unsealed", "deep", "shallow"), [
    ("tenant", "tenants.acme.orders.private.payroll", "tenants.acme.orders"),
    ("tenant", "tenants.acme.secret.db-password", "tenants.acme.orders"),
    ("inner", "a.b.c.d", "a.b.c"),
    ("root", "x.y.z", "x"),
])
async def test_a_star_allow_leaks_deeper_subjects_unless_sealed(
        server: NatsServer, unsealed: str, deep: str, shallow: str) -> None:
    # The finding on the server alone: SUB P.> through allow P.* receives P.x.y; with the
    # seal it receives P.x only.
    assert await _delivered(server.url, unsealed, [deep, shallow]) == {deep, shallow}
    assert await _delivered(server.url, f"{unsealed}-sealed", [deep, shallow]) == {shallow}
