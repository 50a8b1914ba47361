"""Prometheus metrics: ``metrics.listen`` serves ``/metrics`` over HTTP (prometheus-client).

Collectors read the service's own counters when Prometheus scrapes, so nothing on the
request path or in the reloader depends on this module. Exposed:

* ``authsvc_policy_reloads_total{outcome="activated"|"rejected"}``
* ``authsvc_policy_reload_rejections_total{reason}``: by ``policy.reload_rejected`` reason
* ``authsvc_policy_reload_failing``: 1 while the latest reload was rejected (the service
  keeps serving the last good policy), 0 after an activation or once the files are back
  to the revision in force; alert on it
* ``authsvc_policy_rules`` and ``authsvc_policy_info{revision}``: the policy in force
* ``authsvc_requests_in_flight``: callout requests being handled
* ``authsvc_decisions_total{decision="allow"|"deny"|"error",reason}``: answers given
* ``authsvc_request_duration_seconds``: histogram of the time from a request's arrival to
  its reply (nats-server waits 2 s by default)
* ``authsvc_jwks_fetches_total{issuer,outcome="ok"|"failed"}``, ``authsvc_jwks_keys{issuer}``,
  ``authsvc_jwks_age_seconds{issuer}`` and ``authsvc_jwks_stale{issuer}``: each OIDC
  issuer's remote key cache; ``stale`` is 1 while keys are served past their freshness
  because refreshing fails (alert on it: at ``stale_for`` they are dropped)
* ``authsvc_audit_records_total``: lines appended to the audit log file since start
* ``authsvc_audit_fsyncs_total``, ``authsvc_audit_fsync_seconds_total`` and
  ``authsvc_audit_fsync_cpu_seconds_total``: group commits, their wall time and the fsync
  thread's CPU; records / fsyncs is the group size, seconds / fsyncs the disk's fsync
  latency (a rising one delays every allow)
* the standard ``process_*`` metrics (CPU, memory, open files)

The same listener answers ``/healthz`` (``health_problems``): 200 while the event loop runs
and the NATS connection is up, 503 with the reasons otherwise; ``/livez`` judges the event
loop only. It has no authentication:
bind it to loopback or a private interface.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from authsvc.audit import FileSink
from authsvc.identity.jwks import KeyCacheStats
from authsvc.policy import Policy
from authsvc.transport import LatencyHistogram


class ReloadState(Protocol):
    @property
    def activations(self) -> int: ...

    @property
    def rejections(self) -> int: ...

    @property
    def rejections_by_reason(self) -> dict[str, int]: ...

    @property
    def failing(self) -> bool: ...


class ServiceCollector(Collector):
    """Reads reload outcomes, the policy in force, the in-flight count, the decisions given
    and the audit file's counters at scrape time."""

    def __init__(self, reloads: ReloadState, policy: Callable[[], Policy],
                 in_flight: Callable[[], int],
                 decisions: Callable[[], Mapping[tuple[str, str], int]] = dict,
                 audit: FileSink | None = None, *, latency: LatencyHistogram | None = None,
                 key_caches: Callable[[], Iterable[KeyCacheStats]] = list) -> None:
        self._reloads = reloads
        self._policy = policy
        self._in_flight = in_flight
        self._decisions = decisions
        self._audit = audit
        self._latency = latency
        self._key_caches = key_caches

    def collect(self) -> Iterator[Any]:
        reloads = CounterMetricFamily("authsvc_policy_reloads", "Policy reloads by outcome",
                                      labels=["outcome"])
        reloads.add_metric(["activated"], self._reloads.activations)
        reloads.add_metric(["rejected"], self._reloads.rejections)
        yield reloads
        rejected = CounterMetricFamily("authsvc_policy_reload_rejections",
                                       "Rejected policy reloads by reason", labels=["reason"])
        for reason, count in sorted(self._reloads.rejections_by_reason.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield GaugeMetricFamily("authsvc_policy_reload_failing",
                                "1 while the latest policy reload was rejected",
                                value=1 if self._reloads.failing else 0)
        policy = self._policy()
        yield GaugeMetricFamily("authsvc_policy_rules", "Rules in the policy in force",
                                value=len(policy.rules))
        info = GaugeMetricFamily("authsvc_policy_info", "The policy revision in force",
                                 labels=["revision"])
        info.add_metric([policy.revision], 1)
        yield info
        yield GaugeMetricFamily("authsvc_requests_in_flight",
                                "Authorization requests being handled", value=self._in_flight())
        decisions = CounterMetricFamily("authsvc_decisions", "Answers given, by decision and "
                                        "reason code", labels=["decision", "reason"])
        for (decision, reason), count in sorted(dict(self._decisions()).items()):
            decisions.add_metric([decision, reason], count)
        yield decisions
        if self._latency is not None:
            latency = HistogramMetricFamily(
                "authsvc_request_duration_seconds",
                "Seconds from an authorization request's arrival to its reply")
            latency.add_metric([], self._latency.buckets(), self._latency.sum)
            yield latency
        yield from _key_cache_metrics(list(self._key_caches()))
        if self._audit is not None:
            yield from _audit_metrics(self._audit)


def _key_cache_metrics(caches: list[KeyCacheStats]) -> Iterator[Any]:
    fetches = CounterMetricFamily("authsvc_jwks_fetches", "JWKS fetch attempts of each OIDC "
                                  "issuer (discovery included), by outcome",
                                  labels=["issuer", "outcome"])
    keys = GaugeMetricFamily("authsvc_jwks_keys", "Usable keys cached for each OIDC issuer",
                             labels=["issuer"])
    age = GaugeMetricFamily("authsvc_jwks_age_seconds", "Seconds since each OIDC issuer's "
                            "keys were last fetched", labels=["issuer"])
    stale = GaugeMetricFamily("authsvc_jwks_stale", "1 while an issuer's keys are served past "
                              "their freshness because refreshing fails", labels=["issuer"])
    for cache in caches:
        fetches.add_metric([cache.issuer, "ok"], cache.fetched)
        fetches.add_metric([cache.issuer, "failed"], cache.failed)
        keys.add_metric([cache.issuer], cache.keys)
        if cache.age is not None:
            age.add_metric([cache.issuer], cache.age)
        stale.add_metric([cache.issuer], 1 if cache.stale else 0)
    yield from (fetches, keys, age, stale)


def _audit_metrics(audit: FileSink) -> Iterator[Any]:
    stats = audit.fsync_stats
    yield CounterMetricFamily("authsvc_audit_records", "Lines appended to the audit log file",
                              value=audit.records)
    yield CounterMetricFamily("authsvc_audit_fsyncs", "Audit log group commits (fsyncs)",
                              value=stats.count)
    yield CounterMetricFamily("authsvc_audit_fsync_seconds", "Wall time spent in audit fsyncs",
                              value=stats.seconds)
    yield CounterMetricFamily("authsvc_audit_fsync_cpu_seconds",
                              "CPU time of the audit fsync thread", value=stats.cpu_seconds)


def registry_for(collector: ServiceCollector) -> CollectorRegistry:
    """A registry with our collector and the process metrics (no global state)."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


class Heartbeat:
    """Proof that the event loop still runs: ``run()`` stamps the time every ``interval``
    seconds; ``stalled()``, safe from any thread, is how long ago the last stamp is past due."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._beat = time.monotonic()

    async def run(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(self.interval)

    def stalled(self) -> float:
        return max(time.monotonic() - self._beat - self.interval, 0.0)


def health_problems(heartbeat: Heartbeat, nats_connected: Callable[[], bool] | None,
                    max_stall: float = 5.0) -> list[str]:
    """Why the service cannot answer authorization requests now; empty when it can. Without
    ``nats_connected`` only the process itself is judged (liveness: a lost nats-server is
    not cured by a restart)."""
    problems = []
    stalled = heartbeat.stalled()
    if stalled > max_stall:
        problems.append(f"event loop stalled for {stalled:.1f}s")
    if nats_connected is not None and not nats_connected():
        problems.append("not connected to nats-server")
    return problems


def serve_metrics(listen: str, registry: CollectorRegistry,
                  health: Mapping[str, Callable[[], list[str]]] | None = None
                  ) -> Callable[[], None]:
    """Serve ``/metrics`` and each path of ``health`` (200 ``ok``, or 503 with the problems
    its check names, one per line) on ``host:port`` in a background thread; returns a stop
    function."""
    checks = dict(health or {})
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        check = checks.get(str(environ.get("PATH_INFO", "")))
        if check is None:
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        problems = check()
        body = ("\n".join(problems) if problems else "ok").encode() + b"\n"
        start_response("503 Service Unavailable" if problems else "200 OK",
                       [("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body)))])
        return [body]

    family = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True

    server = make_server(host, int(port), app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="authsvc-metrics",
                              daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""
