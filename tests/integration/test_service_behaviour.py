"""How the service behaves under load, at shutdown and with several instances."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.domain import ConnectRequest, Deny, DenyReason, Identity
from authsvc.identity import NkeyVerifier, VerifierRegistry
from authsvc.server import build, serve
from authsvc.settings import load_settings
from tests.support.deploy import AUTHSVC, Deployment


class SlowNkey:
    """The real nkey verifier behind an artificial delay, like a slow identity provider."""

    def __init__(self, delay: float) -> None:
        self.inner = NkeyVerifier()
        self.source = self.inner.source
        self.delay = delay

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        await asyncio.sleep(self.delay)
        return await self.inner.verify(request, now=now)


def _deployment(tmp: Path, names: list[str], **service: Any) -> Deployment:
    d = Deployment(tmp, xkey=True)
    d.rules = [{"id": f"r-{n}", "match": {"source": "nkey", "subject": d.identity(n).public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x.>"]}}} for n in names]
    d.settings_extra = {"service": service}
    return d


async def _try_connect(d: Deployment, name: str) -> tuple[bool, float]:
    started = time.monotonic()
    try:
        nc = await nats.connect(d.url, nkeys_seed_str=d.identity(name).seed,
                                allow_reconnect=False, connect_timeout=5)
    except NatsError:
        return False, time.monotonic() - started
    admitted = bool(nc.is_connected)  # nats-py may return unconnected on a bare close
    await nc.close()
    return admitted, time.monotonic() - started


async def _run_in_process(d: Deployment, delay: float) -> tuple[asyncio.Event, asyncio.Task[None]]:
    settings = load_settings(d.settings_file)
    parts = build(settings, verifiers=VerifierRegistry([SlowNkey(delay)]))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready.set, stop=stop, components=parts))
    await asyncio.wait_for(ready.wait(), 10)
    return stop, task


async def test_beyond_the_bound_requests_are_denied_fast_not_timed_out(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(6)]
    d = _deployment(tmp_path, names, max_concurrency=1, queue_timeout=0.1)
    d.start(service=False)
    try:
        stop, task = await _run_in_process(d, delay=0.4)
        results = await asyncio.gather(*(_try_connect(d, n) for n in names))
        stop.set()
        await task
    finally:
        d.stop()
    admitted = [ok for ok, _ in results if ok]
    assert 1 <= len(admitted) < len(names)
    # Every refusal is an answer well inside the server's 2 s auth timeout.
    assert all(elapsed < 1.5 for ok, elapsed in results if not ok)
    reasons = [r["reason"] for r in d.audit()]
    assert reasons.count(DenyReason.OVERLOADED) == len(names) - len(admitted)
    assert all(r["decision"] == "error" for r in d.audit() if r["reason"] == "overloaded")


async def test_shutdown_drains_requests_in_flight(tmp_path: Path) -> None:
    d = _deployment(tmp_path, ["late"])
    d.start(service=False)
    try:
        stop, task = await _run_in_process(d, delay=0.5)
        attempt = asyncio.create_task(_try_connect(d, "late"))
        await asyncio.sleep(0.2)  # the request is now inside the slow verifier
        stop.set()
        ok, _ = await attempt
        await task
    finally:
        d.stop()
    assert ok
    assert [r["decision"] for r in d.audit()] == ["allow"]


def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    d = _deployment(tmp_path, ["x"])
    d.start()
    try:
        assert d.stop_service() == 0
    finally:
        d.stop()


def _decisions(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = (json.loads(line) for line in path.read_bytes().split(b"\n")[:-1])
    return [r for r in records if r.get("type") == "decision"]


def _wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if "authsvc serving" in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError("second instance did not start:\n" + log.read_text()[-2000:])


async def test_instances_in_a_queue_group_never_double_handle(tmp_path: Path) -> None:
    # The server picks a queue member at random per request: with 24 connects the chance
    # that one instance gets none is 2 * 2**-24, so both logs must hold decisions.
    names = [f"q{i}" for i in range(24)]
    d = _deployment(tmp_path, names)
    d.start()
    second_log, second_audit = tmp_path / "second.log", tmp_path / "second.jsonl"
    env = {**os.environ, "AUTHSVC_AUDIT__PATH": str(second_audit), "PYTHONUNBUFFERED": "1"}
    with second_log.open("ab") as log:
        second = subprocess.Popen([*AUTHSVC, "--log-level", "INFO", "serve", "-c",
                                   str(d.settings_file)], stdout=log, stderr=subprocess.STDOUT,
                                  env=env)
    try:
        _wait_serving(second, second_log)
        results = await asyncio.gather(*(_try_connect(d, n) for n in names))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=15)
        d.stop()
    assert all(ok for ok, _ in results)
    first, other = d.audit(), _decisions(second_audit)
    assert min(len(first), len(other)) > 0, (len(first), len(other))
    # Each connect was decided once, by one instance: one allow per client, one per request.
    decided = first + other
    assert sorted(r["identity"]["principal"] for r in decided) == sorted(
        f"nkey:{d.identity(n).public_key}" for n in names)
    assert {r["decision"] for r in decided} == {"allow"}
    assert len({r["user_nkey"] for r in decided}) == len(names)


@pytest.mark.parametrize("missing", ["policy", "keys", "audit", "server"])
def test_startup_fails_closed_with_a_clear_error(tmp_path: Path, missing: str) -> None:
    d = _deployment(tmp_path, ["x"])
    if missing == "audit":
        d.settings_extra["audit"] = {"path": str(tmp_path / "is-a-dir")}
        (tmp_path / "is-a-dir").mkdir()
    if missing == "server":
        d.settings_extra["nats"] = {"startup_timeout": 1.5}
    d.write()
    if missing == "policy":
        (tmp_path / "policy.yaml").write_text("apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
                                              "  - id: bad\n    match: {source: nkey}\n"
                                              "    grant: {account: APP, publish: {allow: "
                                              "['a..b']}}\n")
    elif missing == "keys":
        (tmp_path / "keys" / "issuer.nk").unlink()
    proc = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                          capture_output=True, text=True, timeout=30)
    # 2: fix the settings, keys or policy; 69 (EX_UNAVAILABLE): nothing answered, a
    # supervisor may try again (the systemd unit does not restart on 2).
    assert proc.returncode == (69 if missing == "server" else 2)
    assert proc.stderr.splitlines()[-1].startswith("authsvc: error: ")
    if missing == "policy":
        assert f"{tmp_path / 'policy.yaml'}:6:" in proc.stderr


def test_startup_with_keys_the_server_does_not_know_says_what_the_server_answered(
        tmp_path: Path) -> None:
    """nats-server generated from other keys: exit 2, naming the server's refusal."""
    from authsvc.protocol.nkeys import KeyPair, Prefix

    d = _deployment(tmp_path, ["x"])
    d.settings_extra["nats"] = {"startup_timeout": 6}
    d.start(service=False)
    try:
        (tmp_path / "keys" / "service.nk").write_text(KeyPair.create(Prefix.USER).seed + "\n")
        proc = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                              capture_output=True, text=True, timeout=30)
    finally:
        d.stop()
    assert proc.returncode == 2
    last = proc.stderr.splitlines()[-1]
    # The server holds an unknown user for its callout's auth timeout (2 s) before it
    # refuses it, so a startup_timeout above that sees the refusal.
    assert last.startswith("authsvc: error: ") and "Authorization Violation" in last


async def test_a_restarted_nats_server_is_served_again_and_the_log_says_so(
        tmp_path: Path) -> None:
    from authsvc.natsconf.process import NatsServer

    d = _deployment(tmp_path, ["x"])
    d.start()
    try:
        assert d.server is not None
        d.server.stop()
        d.server = NatsServer(d.root / "nats-server.conf", port=d.port).start()
        deadline = time.monotonic() + 15
        admitted = False
        while not admitted and time.monotonic() < deadline:
            admitted, _ = await _try_connect(d, "x")
            if not admitted:
                await asyncio.sleep(0.2)
        assert admitted, d.service_log.read_text()[-2000:]
        log = d.service_log.read_text()
        assert "disconnected from nats-server" in log and "reconnected to nats-server" in log
    finally:
        d.stop()


def _wait_log(d: Deployment, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in d.service_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, d.service_log.read_text()[-2000:]
        time.sleep(0.05)


def _audit_types(path: Path) -> list[str]:
    """The record types of every audit file of ``path`` (rotated ones first)."""
    from authsvc.audit.files import log_files

    return [json.loads(line)["type"] for file in log_files(path)
            for line in file.read_bytes().splitlines()]


async def test_a_second_instance_on_the_same_audit_path_refuses_to_start(
        tmp_path: Path) -> None:
    # rotate_bytes 1: every record starts a new file, so the file the first instance opened
    # has been renamed away by the time the second starts; the lock must not go with it.
    d = _deployment(tmp_path, ["x"])
    d.settings_extra["audit"] = {"rotate_bytes": 1}
    d.start()
    try:
        assert (await _try_connect(d, "x"))[0]
        second = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert (await _try_connect(d, "x"))[0]  # the first one serves on
        assert d.stop_service() == 0
    finally:
        d.stop()
    types = _audit_types(d.audit_path)
    assert types.count("service.start") == types.count("service.stop") == 1
    assert types.count("decision") == 2


def test_an_audit_log_the_writer_cannot_continue_refuses_the_start(tmp_path: Path) -> None:
    """Its last line is not a chained record: serving would deny every connect as
    audit_unavailable; serve says so at startup (2) instead, and leaves the file as it was."""
    d = _deployment(tmp_path, ["x"])
    d.write()
    d.audit_path.write_text('{"type": "decision", "note": "not chained"}\n')
    before = d.audit_path.read_bytes()
    proc = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert d.audit_path.read_bytes() == before


def test_sigterm_while_nats_server_is_down_records_the_stop_and_exits_0(
        tmp_path: Path) -> None:
    from authsvc.cli import main
    from authsvc.natsconf.keystore import KeyStore

    d = _deployment(tmp_path, ["x"])
    d.start()
    try:
        assert d.server is not None
        d.server.stop()
        _wait_log(d, "disconnected from nats-server")  # now reconnecting, in vain
        assert d.stop_service() == 0
    finally:
        d.stop()
    assert [r["type"] for r in d.audit_events()][-2:] == ["service.stop", "audit.checkpoint"]
    key = KeyStore(tmp_path / "keys").audit_signer().public_key
    assert main(["audit", "verify", str(d.audit_path), "--key", key]) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_while_still_connecting_exits_0_at_once(tmp_path: Path, sig: int) -> None:
    d = _deployment(tmp_path, ["x"])
    d.write()  # no nats-server: serve keeps trying for nats.startup_timeout (30 s)
    with d.service_log.open("ab") as log:
        d.service = subprocess.Popen([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                                     stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_log(d, "nats connection:")  # its first attempt failed
        d.service.send_signal(sig)
        started = time.monotonic()
        assert d.service.wait(timeout=15) == 0
        assert time.monotonic() - started < 5
    finally:
        d.stop()
    assert d.audit_events() == []  # it never served
