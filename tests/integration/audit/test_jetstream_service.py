"""``authsvc serve`` with the JetStream sink, end to end against real nats-servers.

The service runs as a subprocess with ``audit.sink: jetstream``. Records are read back
with ``authsvc audit fetch`` (as the service identity the generated config permits) and
checked with ``authsvc audit verify``, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.cli import main
from authsvc.clock import SystemClock
from authsvc.commands.audit_stream import SHOWN, setting_text
from authsvc.domain import DenyReason
from authsvc.natsconf.generate import generate
from authsvc.natsconf.keystore import KeyStore
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.natsconf.render import ServerExtras
from authsvc.policy import load_policy
from authsvc.server import policy_accounts
from authsvc.settings import Settings
from tests.support.deploy import AUTHSVC, Deployment

INSTANCE = "svc-1"


@dataclass
class JetStreamDeployment(Deployment):
    """The standard deployment, its nats-server with JetStream (or a second one for it)."""

    separate: bool = False
    js_port: int = 0
    js_server: NatsServer | None = None

    def write(self) -> Settings:
        settings = super().write()
        accounts = policy_accounts(load_policy(settings.policy.paths))
        if not self.separate:
            self._config(settings, accounts, "nats-server.conf", "js")
            return settings
        url = f"nats://127.0.0.1:{self.js_port}"
        other = settings.model_copy(update={"nats": settings.nats.model_copy(update={"url": url})})
        self._config(other, accounts, "nats-js.conf", "js")
        return settings

    def _config(self, settings: Settings, accounts: list[str], name: str, store: str) -> None:
        extras = ServerExtras(server_name=f"test-{name.split('.')[0]}",
                              jetstream_dir=str(self.root / store))
        text = generate(settings, accounts, extras=extras, now=SystemClock().now())
        (self.root / name).write_text(text)

    def start_js(self) -> None:
        self.js_server = NatsServer(self.root / "nats-js.conf", port=self.js_port).start()

    def stop_js(self) -> None:
        if self.js_server is not None:
            self.js_server.stop()
            self.js_server = None

    def stop(self) -> None:
        super().stop()
        self.stop_js()


def _deployment(tmp: Path, *, mode: str = "config", separate: bool = False,
                **jetstream: Any) -> JetStreamDeployment:
    d = JetStreamDeployment(tmp, mode=mode, xkey=True, separate=separate,
                            js_port=free_port() if separate else 0)
    d.rules = [{"id": "load", "match": {"source": "nkey", "subject": d.identity("load").public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x.>"]}}}]
    js = {"ack_timeout": 0.5, "retry_interval": 0.2, **jetstream}
    if separate:
        js["url"] = f"nats://127.0.0.1:{d.js_port}"
    d.settings_extra = {"audit": {"sink": "jetstream", "instance": INSTANCE, "fsync": True,
                                  "jetstream": js}}
    return d


async def _connect(d: Deployment, name: str) -> bool:
    try:
        nc = await nats.connect(d.url, nkeys_seed_str=d.identity("load").seed, name=name,
                                allow_reconnect=False, connect_timeout=2)
    except (NatsError, OSError, TimeoutError):
        return False
    # nats-py returns from connect() without raising when the server closes the socket
    # instead of answering PONG or -ERR (e.g. while it shuts down): only a CONNECTED client
    # was admitted.
    admitted = bool(nc.is_connected)
    await nc.close()
    return admitted


async def _cli(*argv: str) -> int:
    """The CLI runs its own event loop: give it a thread, as a shell would a process."""
    return await asyncio.to_thread(main, list(argv))


async def _fetch(d: Deployment, out: Path) -> list[dict[str, Any]]:
    assert await _cli("audit", "fetch", "-c", str(d.settings_file), "--out", str(out)) == 0
    assert main(["audit", "verify", str(out / INSTANCE), "--keys-dir", str(d.root / "keys")]) == 0
    lines = (out / INSTANCE / "audit.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def _allowed(records: list[dict[str, Any]]) -> set[str]:
    return {r["client"]["name"] for r in records
            if r["type"] == "decision" and r["decision"] == "allow"}


async def _stream_init(d: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """stream-init on the existing stream: the text output shows every setting --json has."""
    capsys.readouterr()
    assert await _cli("audit", "stream-init", "-c", str(d.settings_file), "--json") == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["deny_delete"] and config["deny_purge"] and config["discard"] == "new"
    assert await _cli("audit", "stream-init", "-c", str(d.settings_file)) == 0  # exists
    shown = dict(line.strip().split(": ", 1) for line in capsys.readouterr().out.splitlines()
                 if line.startswith("  "))
    assert shown == {key: setting_text(key, value) for key, value in config.items()}
    assert set(shown) == set(SHOWN)


@pytest.mark.parametrize("mode", ["config", "operator"])
async def test_decisions_land_in_the_stream_and_verify(tmp_path: Path, mode: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    d = _deployment(tmp_path, mode=mode)
    d.start()
    try:
        assert all([await _connect(d, f"c{n}") for n in range(3)])
        assert d.stop_service() == 0
        records = await _fetch(d, tmp_path / "stream")
        await _stream_init(d, capsys)
        # A second fetch never overwrites the first unless asked to.
        before = (tmp_path / "stream" / INSTANCE / "audit.jsonl").read_bytes()
        assert await _cli("audit", "fetch", "-c", str(d.settings_file),
                          "--out", str(tmp_path / "stream")) == 2
        assert (tmp_path / "stream" / INSTANCE / "audit.jsonl").read_bytes() == before
        assert await _cli("audit", "fetch", "-c", str(d.settings_file),
                          "--out", str(tmp_path / "stream"), "--force") == 0
    finally:
        d.stop()
    assert _allowed(records) == {"c0", "c1", "c2"}
    types = [r["type"] for r in records]
    assert types[0] == "service.start" and types[-2:] == ["service.stop", "audit.checkpoint"]


async def test_nats_server_restart_mid_stream_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    d = _deployment(tmp_path)
    d.start()
    admitted: set[str] = set()
    stop = asyncio.Event()
    counter = itertools.count()

    async def worker() -> None:
        while not stop.is_set():
            name = f"c{next(counter)}"
            if await _connect(d, name):
                admitted.add(name)
            else:
                await asyncio.sleep(0.05)

    try:
        load = asyncio.gather(*(worker() for _ in range(20)))
        await asyncio.sleep(1.0)
        assert d.server is not None
        d.server.stop()  # records in flight lose their acks; the service reconnects
        d.server.start()
        before = len(admitted)
        # The load goes on until clients are admitted through the restarted server (the
        # service reconnects with backoff and the sink recovers): wait for that, bounded.
        for _ in range(100):
            await asyncio.sleep(0.1)
            if len(admitted) > before + 10:
                break
        stop.set()
        await load
        assert len(admitted) > before > 20  # load before and after the restart
        assert d.stop_service() == 0
        records = await _fetch(d, tmp_path / "stream")  # verify: no gap, no seq twice
    finally:
        d.stop()
    assert admitted <= _allowed(records)


async def _auth_errors(d: Deployment) -> tuple[Any, list[str]]:
    """Subscribe, as the service identity, to nats-server's AUTH.ERR advisories: the codes
    the service answered with, as the server saw them."""
    reasons: list[str] = []

    async def seen(msg: Any) -> None:
        # nats-server prefixes our code: "Auth callout service returned an error: <code>"
        reasons.append(json.loads(msg.data).get("reason", "").rsplit(": ", 1)[-1])

    nc = await nats.connect(d.url, nkeys_seed_str=KeyStore(d.root / "keys").service().seed)
    await nc.subscribe("$SYS.ACCOUNT.CLIENT.AUTH.ERR", cb=seen)
    await nc.flush()
    return nc, reasons


async def test_jetstream_down_spools_then_fails_closed_then_recovers(tmp_path: Path) -> None:
    d = _deployment(tmp_path, separate=True, spool_max_bytes=8192)
    d.write()
    d.start_js()
    d.start()
    monitor, reasons = await _auth_errors(d)
    names = (f"c{n}" for n in itertools.count())
    try:
        assert await _connect(d, next(names))
        d.stop_js()
        spooled = []
        while await _connect(d, name := next(names)):  # allowed while the spool has room
            spooled.append(name)
        assert spooled  # the spool covered the outage for a while
        await asyncio.sleep(0.2)
        assert DenyReason.AUDIT_UNAVAILABLE.value in reasons
        d.start_js()
        recovered = False
        for _ in range(50):
            if recovered := await _connect(d, "after"):
                break
            await asyncio.sleep(0.1)
        assert recovered
        assert d.stop_service() == 0
        records = await _fetch(d, tmp_path / "stream")
    finally:
        with contextlib.suppress(NatsError):
            await monitor.close()
        d.stop()
    assert {*spooled, "after"} <= _allowed(records)
    types = [r["type"] for r in records]
    assert "audit.sink_degraded" in types and "audit.sink_recovered" in types


async def test_a_second_instance_on_the_same_spool_refuses_to_start(tmp_path: Path) -> None:
    """With ``audit.sink: jetstream`` the file is the spool the stream is fed from: a second
    writer would fork the chain the stream receives."""
    d = _deployment(tmp_path)
    d.start()
    try:
        second = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert await _connect(d, "after")
        assert d.stop_service() == 0
        records = await _fetch(d, tmp_path / "stream")
    finally:
        d.stop()
    assert [r["type"] for r in records].count("service.start") == 1
    assert _allowed(records) == {"after"}
