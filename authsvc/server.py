"""Composition root: settings -> keys, policy, verifiers, minter, audit sink -> running service.

This is the only place that reads settings; everything below gets plain arguments.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import nats

from authsvc import __version__
from authsvc.audit import AuditLog, FileSink, Rotation
from authsvc.clock import Clock, SystemClock
from authsvc.errors import ConfigError
from authsvc.identity import VerifierRegistry
from authsvc.minting import AccountKey, Lifetime, Minter, Mode
from authsvc.natsconf.keystore import KeyStore
from authsvc.natsconf.operator import service_user_jwt
from authsvc.policy import Policy, load_policy
from authsvc.protocol.request import RequestRules
from authsvc.service import CalloutService, InvalidRequestAction
from authsvc.settings import Settings
from authsvc.transport import CalloutTransport, Concurrency
from authsvc.verifiers import build_verifiers

log = logging.getLogger("authsvc.server")


class PolicyHolder:
    """The active policy; swapped whole, read without locks."""

    def __init__(self, policy: Policy) -> None:
        self.current = policy

    def __call__(self) -> Policy:
        return self.current


@dataclass
class Components:
    service: CalloutService
    policy: PolicyHolder
    audit: AuditLog
    keys: KeyStore
    rules: RequestRules
    minter: Minter


def build(settings: Settings, *, clock: Clock | None = None,
          verifiers: VerifierRegistry | None = None) -> Components:
    """Everything the service needs, validated. Raises ConfigError/PolicyError on bad input.

    ``verifiers`` replaces the identity sources built from settings (tests, embedding).
    """
    keys = KeyStore(settings.keys.dir)
    mode = Mode(settings.nats.mode)
    issuer = keys.issuer()
    xkey = keys.xkey() if settings.keys.xkey else None
    accounts: dict[str, AccountKey] = {}
    if mode is Mode.OPERATOR:
        for name in keys.signing_accounts():
            accounts[name] = AccountKey(public_key=keys.account(name).public_key,
                                        signing_key=keys.account_signing(name))
    policy = PolicyHolder(load_policy(settings.policy.paths))
    _check_policy_accounts(policy.current, mode, accounts, settings.nats.callout_account)
    audit = build_audit(settings, keys, clock or SystemClock())
    svc = settings.service
    rules = RequestRules(
        xkey=xkey, require_xkey=xkey is not None,
        allowed_servers=frozenset(svc.allowed_servers),
        max_request_bytes=svc.max_request_bytes, max_field_bytes=svc.max_field_bytes,
        leeway=timedelta(seconds=svc.request_leeway))
    minter = Minter(mode=mode, issuer=issuer, accounts=accounts,
                    lifetime=Lifetime(max_ttl=settings.minting.max_ttl,
                                      jitter=settings.minting.jitter))
    service = CalloutService(
        rules=rules,
        verifiers=verifiers or build_verifiers(settings.identity),
        policy=policy,
        minter=minter,
        audit=audit,
        clock=clock or SystemClock(),
        forbidden_accounts=frozenset({settings.nats.callout_account}),
        invalid_request=InvalidRequestAction(svc.invalid_request),
    )
    return Components(service=service, policy=policy, audit=audit, keys=keys, rules=rules,
                      minter=minter)


def build_audit(settings: Settings, keys: KeyStore, clock: Clock) -> AuditLog:
    """The chained audit log with its checkpoint key (kept apart from JWT-signing keys)."""
    conf = settings.audit
    signer = keys.audit_signer() if conf.signing_key is None else \
        KeyStore(conf.signing_key.parent).audit_signer(conf.signing_key.name)
    return AuditLog(FileSink(conf.path, fsync=conf.fsync),
                    instance=conf.instance or socket.gethostname(), clock=clock,
                    signer=signer, checkpoint_every=conf.checkpoint_interval,
                    rotation=Rotation(max_bytes=conf.rotate_bytes, max_age=conf.rotate_age))


def _audit_start(components: Components, settings: Settings) -> None:
    """``service.start`` names what this run trusts: keys (public halves) and policy."""
    xkey = components.rules.xkey
    components.audit.start(
        version=__version__, pid=os.getpid(), mode=settings.nats.mode,
        policy_revision=components.policy.current.revision,
        keys={"issuer": components.minter.issuer.public_key,
              "xkey": xkey.public_key if xkey else None,
              "audit": components.audit.signer_key})


def policy_accounts(policy: Policy) -> list[str]:
    return sorted({rule.grant.account for rule in policy.rules if rule.grant is not None})


def _check_policy_accounts(policy: Policy, mode: Mode, accounts: dict[str, AccountKey],
                           callout_account: str) -> None:
    named = policy_accounts(policy)
    if callout_account in named:
        raise ConfigError(f"the policy grants the callout account {callout_account!r}; users "
                          "placed there could read other clients' authorization requests")
    if mode is Mode.OPERATOR:
        missing = [name for name in named if name not in accounts]
        if missing:
            raise ConfigError(f"no signing key for account(s) {', '.join(missing)}; run "
                              "`authsvc keys init --mode operator --accounts ...`")


async def connect(settings: Settings, keys: KeyStore, **options: Any) -> Any:
    """Connect as the service identity (nkey in config mode, user JWT in operator mode)."""
    service = keys.service()
    common: dict[str, Any] = {
        "servers": [settings.nats.url], "name": "authsvc", "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5, "connect_timeout": 5, **options,
    }
    if settings.nats.mode == "config":
        return await nats.connect(nkeys_seed_str=service.seed, **common)
    issuer = keys.issuer()
    clock = SystemClock()

    def user_jwt() -> bytes:
        return service_user_jwt(issuer, service.public_key, clock.now()).encode()

    def sign(nonce: str) -> bytes:
        return base64.b64encode(service.sign(nonce.encode()))

    return await nats.connect(user_jwt_cb=user_jwt, signature_cb=sign, **common)


async def serve(settings: Settings, *, ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None,
                components: Components | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then drain in-flight requests."""
    components = components or build(settings)
    nc = await connect(settings, components.keys)
    transport = CalloutTransport(
        nc, components.service, queue_group=settings.nats.queue_group,
        concurrency=Concurrency(max_in_flight=settings.service.max_concurrency,
                                queue_timeout=settings.service.queue_timeout))
    await transport.start()
    _audit_start(components, settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
            loop.add_signal_handler(sig, stop.set)
    log.info("authsvc serving %s in %s mode (queue %s, policy %s)", settings.nats.url,
             settings.nats.mode, settings.nats.queue_group,
             components.policy.current.revision[:12])
    if ready:
        ready()
    await stop.wait()
    log.info("shutting down: draining %d in-flight requests", transport.in_flight)
    await transport.drain(settings.service.shutdown_grace)
    await nc.drain()
    await components.audit.aclose(reason="signal")
