"""A real deployment on loopback: keys, settings, nats-server and ``authsvc serve``.

``Deployment(tmp, mode=..., xkey=..., rules=[...])`` writes everything into ``tmp``:
test identities come from ``identity(name)`` (fresh keys per run), the policy from
``rules`` (policy YAML rule dicts). ``start()`` starts nats-server and, unless
``service=False``, authsvc as a subprocess, exactly as a user would run them.
``with_probe=True`` adds one thing to the server config, a test-only way to hand authsvc crafted
requests (tests/support/probe.py). ``config_edit`` (a function of the config's JSON body) adds
what a test needs beyond what ``nats-config`` generates, such as a leaf node listener.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from authsvc.clock import SystemClock
from authsvc.natsconf.generate import generate
from authsvc.natsconf.keystore import SYSTEM_ACCOUNT, KeyStore
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.natsconf.render import ServerExtras, ServerTls
from authsvc.policy import load_policy
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.server import policy_accounts
from authsvc.settings import Settings, load_settings
from tests.support.probe import Probe

AUTHSVC = [sys.executable, "-m", "authsvc.cli"]


@dataclass
class Deployment:
    root: Path
    mode: str = "config"
    xkey: bool = True
    rules: list[dict[str, Any]] = field(default_factory=list)
    settings_extra: dict[str, Any] = field(default_factory=dict)
    websocket: bool = False
    probe: Probe | None = None  # set by write() when with_probe=True
    with_probe: bool = False
    server_tls: ServerTls | None = None  # nats-config's --tls-* options
    config_edit: Callable[[dict[str, Any]], None] | None = None  # applied after the probe
    port: int = field(default_factory=free_port)
    identities: dict[str, KeyPair] = field(default_factory=dict)
    server: NatsServer | None = None
    service: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def settings_file(self) -> Path:
        return self.root / "authsvc.yaml"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def service_log(self) -> Path:
        return self.root / "authsvc.log"

    def identity(self, name: str) -> KeyPair:
        if name not in self.identities:
            self.identities[name] = KeyPair.create(Prefix.USER)
        return self.identities[name]

    def write(self) -> Settings:
        self.root.mkdir(parents=True, exist_ok=True)
        policy = {"apiVersion": "authsvc/v1", "kind": "Policy", "rules": self.rules}
        (self.root / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
        base: dict[str, Any] = {
            "nats": {"url": self.url, "mode": self.mode},
            "keys": {"dir": "keys", "xkey": self.xkey},
            "policy": {"paths": ["policy.yaml"]},
            "audit": {"path": "audit.jsonl", "fsync": False},
            "minting": {"jitter": 0},
            "service": {"shutdown_grace": 3},
        }
        for section, values in self.settings_extra.items():
            base.setdefault(section, {}).update(values)
        self.settings_file.write_text(yaml.safe_dump(base))
        settings = load_settings(self.settings_file)
        accounts = policy_accounts(load_policy(settings.policy.paths))
        KeyStore(settings.keys.dir).ensure(operator_mode=self.mode == "operator",
                                           accounts=[*accounts, SYSTEM_ACCOUNT])
        extras = ServerExtras(server_name=f"test-{self.mode}",
                              websocket_port=free_port() if self.websocket else None,
                              tls=self.server_tls)
        self.websocket_port = extras.websocket_port
        now = SystemClock().now()
        text = generate(settings, accounts, extras=extras, now=now)
        if self.with_probe:
            keys = KeyStore(settings.keys.dir)
            self.probe = self.probe or Probe()
            text = self.probe.patch(
                text, mode=self.mode, callout_account=settings.nats.callout_account,
                callout_key=keys.issuer().public_key,
                operator=keys.operator() if self.mode == "operator" else None, now=now)
        if self.config_edit is not None:
            text = edit_config(text, self.config_edit)
        (self.root / "nats-server.conf").write_text(text)
        return settings

    def start(self, *, service: bool = True) -> Deployment:
        self.write()
        self.server = NatsServer(self.root / "nats-server.conf", port=self.port).start()
        if service:
            try:
                self.start_service()
            except BaseException:
                self.stop()  # a fixture that fails here never reaches its teardown
                raise
        return self

    def start_service(self, timeout: float = 15.0) -> None:
        log = self.service_log.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.service = subprocess.Popen(
            [*AUTHSVC, "--log-level", "INFO", "serve", "-c", str(self.settings_file)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "authsvc serving" in self.service_log.read_text(errors="replace"):
                return
            if self.service.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("authsvc did not start:\n" + self.service_log.read_text()[-3000:])

    def stop_service(self) -> int | None:
        if self.service is None:
            return None
        if self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        code = self.service.returncode
        self.service = None
        return code

    def stop(self) -> None:
        self.stop_service()
        if self.server is not None:
            self.server.stop()

    def audit(self) -> list[dict[str, Any]]:
        """The decision records (``type: decision``) of the active audit file."""
        return [r for r in self.audit_events() if r.get("type") == "decision"]

    def audit_events(self) -> list[dict[str, Any]]:
        """Every complete record of the active audit file: decisions, checkpoints, events."""
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_bytes().split(b"\n")[:-1]]

    def wait_audit(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        records = self.audit()
        while len(records) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            records = self.audit()
        return records


def edit_config(text: str, edit: Callable[[dict[str, Any]], None]) -> str:
    """``text`` (a generated config: comment lines, then one JSON object) after ``edit``
    changed its JSON body in place."""
    start = text.index("{")
    body = json.loads(text[start:])
    edit(body)
    return text[:start] + json.dumps(body, indent=2) + "\n"


def iter_modes() -> Iterator[tuple[str, bool]]:
    for mode in ("config", "operator"):
        for xkey in (False, True):
            yield mode, xkey
