"""The three things the benchmark connects through, each on a fresh nats-server.

* ``token``   — nats-server's built-in ``authorization { token }``; no callout at all.
* ``minimal`` — auth callout answered by :mod:`bench.minimal_responder` (no verification).
* ``authsvc`` — auth callout answered by ``authsvc serve`` (the real service).
* ``authsvc-oidc`` — the same, but clients send OIDC JWTs (RS256, a different one on every
  connect, ``auth_token``) verified against a loopback JWKS (:mod:`bench.oidc`).

Both callout scenarios get their keys and server config from the authsvc CLI (``keys init``,
``nats-config``) so they run against the same server setup; if the CLI cannot provide them the
bench writes an equivalent config-mode setup itself and says so in the notes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.keys import load_curve, load_keypair, new_user, raw_seed, write_config_mode_keys
from bench.loadgen import (
    Credentials,
    NkeyCredentials,
    TokenCredentials,
    TokenPoolCredentials,
    connect_once,
)
from bench.oidc import ISSUER as OIDC_ISSUER
from bench.oidc import SUBJECT_GLOB, BenchIssuer, issuer_settings
from bench.procs import Child, ProcessError, free_port, run_tool, start_nats_server, venv_tool

SCENARIOS = ("token", "minimal", "authsvc", "authsvc-oidc", "authsvc-nofsync")
#: Settings a scenario always runs with, on top of ``--authsvc-set``.
_FIXED_SETTINGS: dict[str, dict[str, object]] = {"authsvc-nofsync": {"audit.fsync": False}}
TARGET_ACCOUNT = "APP"
AUTH_TIMEOUT_S = 2  # nats-server default; a lost reply costs a client this long


class ScenarioUnavailable(RuntimeError):
    """The scenario could not be set up (e.g. the authsvc CLI is not there yet)."""


@dataclass
class Target:
    """A running server (and responder) the load generator can hammer."""

    port: int
    credentials: Credentials
    nats: Child
    responder: Child | None
    notes: list[str] = field(default_factory=list)
    metrics_url: str | None = None  # authsvc's /metrics: audit records and group commits


@asynccontextmanager
async def open_target(
    name: str, workdir: Path, overrides: Mapping[str, object] | None = None
) -> AsyncIterator[Target]:
    """Start scenario *name* under *workdir*; stop every process it started on exit.

    *overrides* are dotted authsvc settings keys (``audit.fsync``) applied to the settings
    file of both callout scenarios.
    """
    if name == "token":
        builder = _token_target
    elif name in ("minimal", "authsvc", "authsvc-oidc", "authsvc-nofsync"):
        builder = _callout_target
    else:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    children: list[Child] = []
    try:
        settings = {**(overrides or {}), **_FIXED_SETTINGS.get(name, {})}
        target = builder(name, workdir, children, settings)
        await _wait_until_accepting(target)
        yield target
    except ProcessError as exc:
        raise ScenarioUnavailable(str(exc)) from exc
    finally:
        for child in reversed(children):
            child.stop()


def _token_target(
    name: str, workdir: Path, children: list[Child], overrides: Mapping[str, object]
) -> Target:
    port = free_port()
    token = secrets.token_urlsafe(24)
    config = workdir / "nats-server.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f"server_name: bench-token\n"
        f'authorization {{\n  token: "{token}"\n  timeout: {AUTH_TIMEOUT_S}\n}}\n'
    )
    children.append(start_nats_server(config, port, workdir))
    return Target(port, TokenCredentials(token), children[-1], None)


def _callout_target(
    name: str, workdir: Path, children: list[Child], overrides: Mapping[str, object]
) -> Target:
    port = free_port()
    notes: list[str] = []
    keys_dir = workdir / "keys"
    _init_keys(keys_dir, notes)
    client = new_user()
    credentials: Credentials = NkeyCredentials(client.public_key, raw_seed(client))
    rule_match: dict[str, Any] = {"source": "nkey", "subject": client.public_key}
    identity: dict[str, Any] = {}
    if name == "authsvc-oidc":
        credentials, rule_match, identity = _oidc_client(workdir, children, notes)
    metrics_url = None
    if name != "minimal":
        listen = f"127.0.0.1:{free_port()}"
        overrides = {"metrics.listen": listen, **overrides}
        metrics_url = f"http://{listen}/metrics"
    settings = _write_settings(workdir, port, keys_dir, rule_match, overrides, identity)
    config = _server_config(workdir, settings, port, keys_dir, notes)
    children.insert(0, start_nats_server(config, port, workdir))
    url = f"nats://127.0.0.1:{port}"
    if name == "minimal":
        argv = [
            venv_tool("python"), "-m", "bench.minimal_responder",
            "--url", url, "--keys", str(keys_dir), "--account", TARGET_ACCOUNT,
        ]  # fmt: skip
    else:
        argv = [venv_tool("authsvc"), "serve", "--config", str(settings)]
    children.append(Child(name, argv, workdir))
    return Target(port, credentials, children[0], children[-1], notes, metrics_url)


def _oidc_client(
    workdir: Path, children: list[Child], notes: list[str]
) -> tuple[Credentials, dict[str, Any], dict[str, Any]]:
    """Serve a JWKS on loopback and mint the token pool (credentials, rule match, identity)."""
    issuer = BenchIssuer.create(workdir)
    jwks_port = free_port()
    argv = [venv_tool("python"), "-m", "http.server", str(jwks_port),
            "--bind", "127.0.0.1", "--directory", str(issuer.jwks_dir)]  # fmt: skip
    children.append(Child("jwks", argv, workdir))
    tokens = issuer.mint_tokens()
    notes.append(f"oidc: RS256-2048, {len(tokens)} distinct tokens of {len(tokens[0])} bytes, "
                 "one per connect; JWKS fetched once from loopback, then cached")
    match = {"source": "oidc", "issuer": OIDC_ISSUER, "subject_glob": SUBJECT_GLOB}
    jwks_uri = f"http://127.0.0.1:{jwks_port}/jwks.json"
    return TokenPoolCredentials(tokens), match, issuer_settings(jwks_uri)


def _init_keys(keys_dir: Path, notes: list[str]) -> None:
    """``authsvc keys init``; fall back to bench-generated keys with the same file names."""
    try:
        run_tool([venv_tool("authsvc"), "keys", "init", "--dir", str(keys_dir)])
        load_keypair(keys_dir / "issuer.nk")
        load_keypair(keys_dir / "service.nk")
        notes.append("keys: authsvc keys init")
        return
    except (ProcessError, OSError, ValueError) as exc:
        notes.append(f"keys: bench fallback ({_short(exc)})")
    write_config_mode_keys(keys_dir)


def _write_settings(
    workdir: Path, port: int, keys_dir: Path, match: Mapping[str, Any],
    overrides: Mapping[str, object], identity: Mapping[str, Any] | None = None,
) -> Path:
    """authsvc settings + a policy that admits exactly the load generator's identity."""
    policy = workdir / "policy.yaml"
    rule = {
        "id": "bench-client",
        "match": dict(match),
        "grant": {
            "account": TARGET_ACCOUNT,
            "ttl": "10m",
            "publish": {"allow": ["bench.>"]},
            "subscribe": {"allow": ["_INBOX.>"]},
        },
    }
    policy.write_text(
        yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    )
    settings = workdir / "settings.yaml"
    document: dict[str, Any] = {
        "nats": {"url": f"nats://127.0.0.1:{port}", "mode": "config"},
        "keys": {"dir": str(keys_dir)},
        "policy": {"paths": [str(policy)]},
        "audit": {"path": str(workdir / "audit.jsonl")},
    }
    if identity:
        document["identity"] = dict(identity)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    settings.write_text(yaml.safe_dump(document))
    return settings


def _server_config(
    workdir: Path, settings: Path, port: int, keys_dir: Path, notes: list[str]
) -> Path:
    """``authsvc nats-config``; fall back to the bench's own config-mode file."""
    out = workdir / "nats-server.conf"
    try:
        argv = [venv_tool("authsvc"), "nats-config", "--config", str(settings), "--out", str(out)]
        run_tool(argv)
        if out.is_file():
            notes.append("server config: authsvc nats-config")
            return out
        notes.append("server config: bench fallback (authsvc nats-config wrote nothing)")
    except ProcessError as exc:
        notes.append(f"server config: bench fallback ({_short(exc)})")
    return _fallback_config(workdir, port, keys_dir)


def _fallback_config(workdir: Path, port: int, keys_dir: Path) -> Path:
    """Config-mode callout as nats-config writes it: service nkey in AUTH (=> nonce), xkey on."""
    service = load_keypair(keys_dir / "service.nk").public_key
    issuer = load_keypair(keys_dir / "issuer.nk").public_key
    xkey_path = keys_dir / "xkey.xk"
    xkey_line = f"    xkey: {load_curve(xkey_path).public_key}\n" if xkey_path.exists() else ""
    config = workdir / "nats-server.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        "server_name: bench-callout\n"
        "max_control_line: 32768\n"
        "accounts {\n"
        f"  AUTH {{ users: [ {{ nkey: {service} }} ] }}\n"
        f"  {TARGET_ACCOUNT} {{ }}\n"
        "}\n"
        "authorization {\n"
        f"  timeout: {AUTH_TIMEOUT_S}\n"
        "  auth_callout {\n"
        f"    issuer: {issuer}\n"
        "    account: AUTH\n"
        f"    auth_users: [ {service} ]\n"
        f"{xkey_line}"
        "  }\n"
        "}\n"
    )
    return config


async def _wait_until_accepting(target: Target, timeout_s: float = 30.0) -> None:
    """Probe with real connects until one is accepted: the responder is subscribed.

    Client-side probe timeouts start short and double: before the responder subscribes the
    server holds every attempt for the full auth timeout, which would waste seconds per probe.
    """
    deadline = time.monotonic() + timeout_s
    last_error: str | None = "no attempt"
    probe_timeout_s = 0.25
    while time.monotonic() < deadline:
        target.nats.check_alive()
        if target.responder is not None:
            target.responder.check_alive()
        _, last_error = await connect_once(
            "127.0.0.1", target.port, target.credentials, probe_timeout_s
        )
        if last_error is None:
            return
        probe_timeout_s = min(probe_timeout_s * 2, AUTH_TIMEOUT_S + 1.0)
        await asyncio.sleep(0.1)
    tail = target.responder.log_tail() if target.responder else target.nats.log_tail()
    raise ProcessError(f"never accepted a connect (last: {last_error}); log: {tail}")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."
