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
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from authsvc import __version__, startup_checks
from authsvc.account_checks import check_policy_accounts as _check_policy_accounts
from authsvc.account_checks import forbidden_accounts
from authsvc.account_checks import policy_accounts as policy_accounts
from authsvc.audit import AuditLog, FileSink, Rotation
from authsvc.audit.files import WriterHeld, lock_path
from authsvc.audit.files import claim as claim_writer
from authsvc.audit.ingest import AUTH_ERROR_SUBJECT, AUTH_ERROR_TYPE, auth_error_fields
from authsvc.audit.jetstream import JetStreamSink, SinkConfig
from authsvc.audit.keychange import key_set
from authsvc.audit.log import check_resumable
from authsvc.audit.stream import StreamSpec, subject_for
from authsvc.clock import Clock, SystemClock
from authsvc.errors import AuditError, ConfigError, UnavailableError
from authsvc.identity import VerifierRegistry
from authsvc.minting import AccountKey, Lifetime, Minter, Mode
from authsvc.natsconf.keystore import KeyStore
from authsvc.natsconf.operator import service_user_jwt
from authsvc.policy import Policy, load_policy
from authsvc.policy_gates import lint_loaded
from authsvc.policy_reload import PolicyReloader, ReloadSources
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
    reloader: PolicyReloader
    key_set: dict[str, Any]  # public keys by role, as loaded; recorded at start
    verifiers: VerifierRegistry


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
            accounts[name] = AccountKey(public_key=keys.account_public(name),
                                        signing_key=keys.account_signing(name))
    check_accounts = partial(_check_policy_accounts, mode=mode, accounts=accounts,
                             forbidden=forbidden_accounts(settings))
    policy = PolicyHolder(load_policy(settings.policy.paths))
    startup_checks.check_accounts(policy.current, settings, check_accounts)
    sources = reload_sources(settings)
    startup_checks.check_gates(policy.current, sources)
    _log_lint(policy.current, sources)
    _check_writable(settings.audit.path)
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
    verifiers = verifiers or build_verifiers(settings.identity)
    service = CalloutService(
        rules=rules,
        verifiers=verifiers,
        policy=policy,
        minter=minter,
        audit=audit,
        clock=clock or SystemClock(),
        forbidden_accounts=forbidden_accounts(settings),
        invalid_request=InvalidRequestAction(svc.invalid_request),
    )
    reloader = PolicyReloader(policy, sources, audit=audit, check_accounts=check_accounts,
                              interval=settings.policy.watch_interval)
    # Keys are read once, here: a reload re-reads policy files only, so a key change
    # takes a restart and the start is where it is recorded.
    loaded = key_set(issuer=issuer.public_key, service=keys.service().public_key,
                     xkey=xkey.public_key if xkey else None, audit=audit.signer_key,
                     account_signing={name: account.signing_key.public_key
                                      for name, account in accounts.items()})
    return Components(service=service, policy=policy, audit=audit, keys=keys, rules=rules,
                      minter=minter, reloader=reloader, key_set=loaded, verifiers=verifiers)


def reload_sources(settings: Settings) -> ReloadSources:
    """What a policy (re)load reads and which optional gates it must pass."""
    conf = settings.policy
    return ReloadSources(paths=tuple(conf.paths), test_paths=tuple(conf.test_paths),
                         reject_warnings=conf.reject_warnings,
                         oidc_issuers=settings.identity.oidc.exact_issuers)


def _log_lint(policy: Policy, sources: ReloadSources) -> None:
    """Say at startup what ``policy check -c`` would warn about (e.g. ``github_unbound``)."""
    for warning in lint_loaded(policy, sources.oidc_issuers):
        log.warning("policy warning [%s] rule %s: %s", warning.code, warning.rule_id,
                    warning.message)


def build_audit(settings: Settings, keys: KeyStore, clock: Clock) -> AuditLog:
    """The chained audit log with its checkpoint key (kept apart from JWT-signing keys).

    With ``audit.sink: jetstream|both`` records also go to the JetStream stream over a
    connection of their own (same service identity); with ``jetstream`` the file is only a
    bounded spool, rotated in segments that are deleted once acknowledged.
    """
    conf = settings.audit
    signer = keys.audit_signer() if conf.signing_key is None else \
        KeyStore(conf.signing_key.parent).audit_signer(conf.signing_key.name)
    instance = conf.instance or socket.gethostname()
    rotation = Rotation(max_bytes=conf.rotate_bytes, max_age=conf.rotate_age)
    remote = None
    if conf.sink != "file":
        remote = _jetstream_sink(settings, keys, instance)
        if conf.sink == "jetstream":
            segment = conf.jetstream.spool_max_bytes // 4
            rotation = Rotation(max_bytes=min(conf.rotate_bytes or segment, segment),
                                max_age=conf.rotate_age)
    return AuditLog(FileSink(conf.path, fsync=conf.fsync), instance=instance, clock=clock,
                    signer=signer, checkpoint_every=conf.checkpoint_interval,
                    rotation=rotation, remote=remote)


def _jetstream_sink(settings: Settings, keys: KeyStore, instance: str) -> JetStreamSink:
    conf, js = settings.audit, settings.audit.jetstream
    try:
        subject = subject_for(instance)
    except AuditError as exc:
        raise ConfigError(str(exc)) from None
    spool_only = conf.sink == "jetstream"
    config = SinkConfig(
        subject=subject,
        stream=StreamSpec(replicas=js.replicas, max_age=js.max_age,
                          duplicate_window=js.duplicate_window),
        create_stream=js.create_stream, ack_timeout=js.ack_timeout,
        retry_interval=js.retry_interval, prune=spool_only,
        max_bytes=js.spool_max_bytes if spool_only else None,
        max_age=js.spool_max_age.total_seconds() or None if spool_only else None)

    async def audit_connection() -> Any:
        servers = [js.url or settings.nats.url]
        return await connect(settings, keys, name="authsvc-audit", servers=servers)

    return JetStreamSink(conf.path, audit_connection, config)


def _audit_start(components: Components, settings: Settings) -> None:
    """``service.start`` names what this run trusts: keys (public halves) and policy.

    A key set that differs from the one last recorded is also written as ``key.changed``.
    """
    components.audit.start(
        version=__version__, pid=os.getpid(), mode=settings.nats.mode,
        policy_revision=components.policy.current.revision,
        policy_git_revision=components.policy.current.git_revision,
        keys=components.key_set)


async def _ingest_auth_errors(nc: Any, audit: AuditLog) -> None:
    """Record nats-server's authorization failures (incl. refused minted JWTs) as events."""
    async def on_event(msg: Any) -> None:
        try:
            audit.event(AUTH_ERROR_TYPE, **auth_error_fields(msg.data))
            await audit.commit()
        except AuditError as exc:
            log.error("could not record a nats-server auth error event: %s", exc)

    await nc.subscribe(AUTH_ERROR_SUBJECT, cb=on_event)


def _check_writable(path: Path) -> None:
    """Fail at startup, not on the first connect, when the audit log cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640))
    except OSError as exc:
        raise ConfigError(f"audit log {path} is not writable: {exc.strerror}") from None


def _start_metrics(settings: Settings, components: Components, transport: CalloutTransport,
                   nc: Any) -> Callable[[], None]:
    """Serve /metrics when ``metrics.listen`` is set; returns how to stop it."""
    if not settings.metrics.listen:
        return lambda: None
    from authsvc.metrics import (
        Heartbeat,
        ServiceCollector,
        health_problems,
        registry_for,
        serve_metrics,
    )

    collector = ServiceCollector(components.reloader, lambda: components.policy.current,
                                 lambda: transport.in_flight,
                                 lambda: components.service.decisions, components.audit.sink,
                                 latency=transport.latency,
                                 key_caches=components.verifiers.key_caches)
    heartbeat = Heartbeat()
    beating = asyncio.get_running_loop().create_task(heartbeat.run())
    try:
        stop = serve_metrics(settings.metrics.listen, registry_for(collector), {
            "/healthz": lambda: health_problems(heartbeat, lambda: bool(nc.is_connected)),
            "/livez": lambda: health_problems(heartbeat, None)})
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {settings.metrics.listen} "
                          f"(metrics.listen): {exc.strerror}") from None
    listen = settings.metrics.listen  # an empty host listens on every interface
    log.info("metrics on http://%s/metrics, health on /healthz and /livez",
             "0.0.0.0" + listen if listen.startswith(":") else listen)  # noqa: S104 (shown)

    def stop_all() -> None:
        beating.cancel()
        stop()

    return stop_all


def redact_url(url: str) -> str:
    """The URL without any user:password part, for logs and errors."""
    parsed = urlparse(url)
    if parsed.username is None and parsed.password is None:
        return url
    return parsed._replace(netloc=f"***@{parsed.hostname}:{parsed.port or 4222}").geturl()


async def connect(settings: Settings, keys: KeyStore, **options: Any) -> Any:
    """Connect as the service identity (nkey in config mode, user JWT in operator mode).

    Gives up after ``nats.startup_timeout`` seconds: with a ConfigError (exit 2) naming what
    the server answered when it refused the login or its TLS certificate did not verify
    (keys or settings, which a retry cannot fix); with an UnavailableError (exit 69) when
    nothing answered. Once connected, reconnects forever. ``options`` go to nats-py; its
    ``servers`` name the server in the log and errors (the audit connection's may differ).
    """
    last: list[str] = []
    refused: list[str] = []  # what the server itself answered (-ERR), e.g. a bad credential
    tls_failed: list[str] = []  # its certificate did not verify (or the TLS handshake failed)
    # A server that does not require TLS while the settings ask for it: give up at once.
    plaintext: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def log_error(exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if not last or last[-1] != text:  # say it once per kind, not every 0.5 s
            log.warning("nats connection: %s", text)
        last[:] = [text]
        if type(exc) is nats.errors.Error or isinstance(exc, nats.errors.AuthorizationError):
            refused[:] = [text]  # a -ERR line, not a transport symptom (EOF, reset)
        if isinstance(exc, ssl.SSLError):
            tls_failed[:] = [text]
        if isinstance(exc, TlsNotOffered) and not plaintext.done():
            plaintext.set_result(text)

    servers = options.get("servers") or [settings.nats.url]
    where = ", ".join(redact_url(str(server)) for server in servers)

    async def disconnected() -> None:
        log.info("disconnected from nats-server at %s", where)  # also on our own close

    async def reconnected() -> None:
        last.clear()  # the next failure is news again
        log.info("reconnected to nats-server at %s", where)

    callbacks = {"error_cb": log_error, "disconnected_cb": disconnected,
                 "reconnected_cb": reconnected, **options}
    connecting = asyncio.ensure_future(_connect(settings, keys, **callbacks))
    try:
        try:
            await asyncio.wait({connecting, plaintext}, timeout=settings.nats.startup_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside (a stop while connecting)
            connecting.cancel()
            raise
        refused_plaintext = connecting.done() and not connecting.cancelled() \
            and isinstance(connecting.exception(), TlsNotOffered)
        if refused_plaintext or (plaintext.done() and not connecting.done()):
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            raise ConfigError(
                f"nats-server at {where} does not require TLS, but authsvc's settings ask for "
                "it (a tls:// nats.url or nats.tls_*): refusing to log in without TLS; "
                "generate the server's config with nats-config --tls-cert/--tls-key") from None
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            raise TimeoutError
        return connecting.result()
    except TimeoutError:
        # The server's own refusal says more than the socket errors around it.
        seen = f" (last error: {(refused or tls_failed or last)[-1]})" if last else ""
        message = (f"cannot connect to nats-server at {where} within "
                   f"{settings.nats.startup_timeout:g}s (nats.startup_timeout){seen}")
        if refused:  # it answered and refused us: keys or config, which a retry cannot fix
            raise ConfigError(f"{message}; was its config generated from these keys?") \
                from None
        if tls_failed:  # it answered with a certificate we do not trust: settings, not luck
            raise ConfigError(f"{message}; does nats.tls_ca name the CA of its certificate, "
                              "and does nats.url's host match it?") from None
        # Nothing answered: it may still be starting. Exit 69, not 2, so a supervisor that
        # treats 2 as "do not restart" (the systemd unit) tries again.
        raise UnavailableError(f"{message}; is it running?") from None
    except (OSError, nats.errors.Error) as exc:
        raise ConfigError(f"cannot connect to nats-server at {where}: "
                          f"{type(exc).__name__} {exc}".rstrip()) from None


def tls_context(settings: Settings, *, required: bool = False) -> ssl.SSLContext | None:
    """The TLS client context for nats.tls_* (None without TLS, unless ``required``, e.g.
    for a ``tls://`` audit.jetstream.url). Verifies the server's certificate and host name;
    raises ConfigError naming the setting that cannot be read."""
    conf = settings.nats
    if not (conf.tls or required):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(conf.tls_ca) if conf.tls_ca is not None else None)
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError(f"nats.tls_ca {conf.tls_ca}: cannot load CA certificates "
                          f"({_reason(exc)})") from None
    if conf.tls_cert is not None and conf.tls_key is not None:
        try:
            context.load_cert_chain(str(conf.tls_cert), str(conf.tls_key))
        except OSError as exc:  # ssl.SSLError included
            raise ConfigError(f"nats.tls_cert/nats.tls_key {conf.tls_cert}: cannot load the "
                              f"client certificate and key ({_reason(exc)})") from None
    return context


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):  # an OSError too, whose strerror is not the point
        return str(exc.reason or exc)
    return exc.strerror or type(exc).__name__


class TlsNotOffered(nats.errors.Error):
    """The server's INFO does not require TLS while the settings ask for it. A
    ``nats.errors.Error``, so that nats-py's reconnect loop reports it and tries again
    (any other exception ends that loop for good)."""


class _TlsOnlyClient(NatsClient):
    """A nats-py client that never logs in over plaintext when TLS was asked for.

    nats-py upgrades a connection to TLS only when the server's INFO says ``tls_required``,
    whatever the URL scheme; a server without TLS, or anything in the path that rewrites
    INFO, would otherwise receive the service's login (its nkey signature over a nonce the
    other side chose, or its user JWT) in the clear, on the first connect and on every
    reconnect. This refuses such an INFO before CONNECT is written; nats-py reports it to
    ``error_cb`` and, once connected, keeps trying to reconnect.
    """

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if initial_connection and info.get("tls_required") is not True:
            raise TlsNotOffered("the server does not require TLS (its INFO has no "
                                "tls_required)")
        await super()._process_info(info, initial_connection=initial_connection)


async def _connect(settings: Settings, keys: KeyStore, **options: Any) -> Any:
    service = keys.service()
    common: dict[str, Any] = {
        "servers": [settings.nats.url], "name": "authsvc", "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5, "connect_timeout": 5, **options,
    }
    # TLS when the settings ask for it or any server to connect to is tls:// (the audit
    # connection's audit.jetstream.url may differ from nats.url).
    context = tls_context(settings, required=any(
        urlparse(str(server)).scheme == "tls" for server in common["servers"]))
    client = NatsClient()
    if context is not None:
        common["tls"] = context
        client = _TlsOnlyClient()
    if settings.nats.mode == "config":
        await client.connect(nkeys_seed_str=service.seed, **common)
        return client
    issuer = keys.issuer()
    clock = SystemClock()

    def user_jwt() -> bytes:
        return service_user_jwt(issuer, service.public_key, clock.now()).encode()

    def sign(nonce: str) -> bytes:
        return base64.b64encode(service.sign(nonce.encode()))

    await client.connect(user_jwt_cb=user_jwt, signature_cb=sign, **common)
    return client


async def serve(settings: Settings, *, ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None,
                components: Components | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then drain in-flight requests.

    Refuses to start (ConfigError) when another process writes ``audit.path``. A stop while
    it is still connecting ends it at once; after that, shutdown always records
    ``service.stop`` and the closing checkpoint, whether or not nats-server is reachable.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = _on_signals(loop, {signal.SIGTERM: stop.set, signal.SIGINT: stop.set})
    try:
        components = components or build(settings)
        release = _claim_audit_path(settings.audit.path)
        try:
            nc = await _connect_unless_stopped(settings, components.keys, stop)
            if nc is None:
                log.info("stopped before connecting to nats-server")
                return
            await _serve_connected(settings, components, nc, stop, ready)
        finally:
            release()  # a no-op once the audit log took the lock over (and closed it)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _subscribe(settings: Settings, components: Components,
                     nc: Any) -> tuple[CalloutTransport, Callable[[], None]]:
    """The transport, subscribed, and how to stop /metrics; closes ``nc`` if either fails."""
    transport = CalloutTransport(
        nc, components.service, queue_group=settings.nats.queue_group,
        concurrency=Concurrency(max_in_flight=settings.service.max_concurrency,
                                queue_timeout=settings.service.queue_timeout))
    try:
        stop_metrics = _start_metrics(settings, components, transport, nc)  # a busy port fails
    except BaseException:
        await _close_connection(nc)
        raise
    try:
        await transport.start()
    except BaseException:
        stop_metrics()
        await _close_connection(nc)
        raise
    return transport, stop_metrics


async def _serve_connected(settings: Settings, components: Components, nc: Any,
                           stop: asyncio.Event, ready: Callable[[], None] | None) -> None:
    transport, stop_metrics = await _subscribe(settings, components, nc)
    _audit_start(components, settings)
    loop = asyncio.get_running_loop()
    hup: list[signal.Signals] = []
    reason = "signal"  # also for a stop by the embedding code (``stop``, cancellation)
    try:
        await _ingest_auth_errors(nc, components.audit)
        components.reloader.start()
        hup = _on_signals(loop, {signal.SIGHUP: components.reloader.on_signal})
        log.info("authsvc serving %s in %s mode (queue %s, policy %s; audit %s as %s; keys %s)",
                 redact_url(settings.nats.url),
                 settings.nats.mode, settings.nats.queue_group,
                 components.policy.current.revision[:12], settings.audit.path,
                 components.audit.instance, settings.keys.dir)
        if ready:
            ready()
        await stop.wait()
    except Exception:
        reason = "error"
        raise
    finally:
        for sig in hup:
            loop.remove_signal_handler(sig)
        stop_metrics()
        await _shutdown(settings, components, transport, nc, reason)


async def _shutdown(settings: Settings, components: Components, transport: CalloutTransport,
                    nc: Any, reason: str) -> None:
    """Answer what is in flight, close the connection, then record ``service.stop`` and the
    closing checkpoint: those are written whatever happened before."""
    try:
        log.info("shutting down: draining %d in-flight requests", transport.in_flight)
        await transport.drain(settings.service.shutdown_grace)
        await _close_connection(nc)
    finally:
        await components.reloader.aclose()
        await components.audit.aclose(reason=reason)


def _on_signals(loop: asyncio.AbstractEventLoop,
                actions: dict[signal.Signals, Callable[[], None]]) -> list[signal.Signals]:
    """Handle these signals on ``loop``; returns the ones it could (main thread only)."""
    handled = []
    for sig, action in actions.items():
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
            loop.add_signal_handler(sig, action)
            handled.append(sig)
    return handled


def _claim_audit_path(path: Path) -> Callable[[], None]:
    """Take the audit log's writer lock before joining the queue group: a second instance
    on the same ``audit.path`` would otherwise serve and deny its share of connects
    (``audit_unavailable``). Readers (``audit verify``, ``export``, ``report``) never lock."""
    try:
        release = claim_writer(path)
    except WriterHeld:
        raise ConfigError(f"audit.path {path}: another authsvc holds it (lock "
                          f"{lock_path(path)}); give each instance its own audit.path") \
            from None
    except AuditError as exc:
        raise ConfigError(f"audit.path {path}: {exc}") from None
    try:
        # A log the writer cannot continue would deny every connect (audit_unavailable):
        # say so now, before joining the queue group.
        check_resumable(path)
    except AuditError as exc:
        release()
        raise ConfigError(f"audit.path {path}: {exc}") from None
    return release


async def _connect_unless_stopped(settings: Settings, keys: KeyStore,
                                  stop: asyncio.Event) -> Any | None:
    """``connect``, or None when ``stop`` is set first (e.g. SIGTERM while nats-server is
    down): a supervisor that asks for a stop gets one, not a wait for nats.startup_timeout."""
    connecting = asyncio.ensure_future(connect(settings, keys))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
    return None if connecting.cancelled() else connecting.result()


# After the requests in flight were answered, draining the connection only flushes their
# replies and ends the auth-error subscription: seconds at most on a live connection.
DRAIN_TIMEOUT = 5.0


async def _close_connection(nc: Any) -> None:
    """Drain the connection; when nats-server cannot be reached (nats-py refuses to drain
    a reconnecting connection) or the drain does not finish, close it without draining."""
    try:
        await asyncio.wait_for(nc.drain(), DRAIN_TIMEOUT)
        return
    except (nats.errors.Error, TimeoutError) as exc:
        log.warning("could not drain the connection to nats-server (%s); closing it without "
                    "draining", str(exc) or type(exc).__name__)
    with contextlib.suppress(nats.errors.Error, TimeoutError):
        await asyncio.wait_for(nc.close(), DRAIN_TIMEOUT)
