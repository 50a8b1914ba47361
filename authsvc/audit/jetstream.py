"""The JetStream sink: every record published to the audit stream, acknowledged before allows.

Each record reaches the local file first (the ``AuditLog``'s ``FileSink``), then this sink
publishes it to ``authsvc.audit.<instance>`` with ``Nats-Msg-Id`` = its event id. ``commit``
returns once JetStream acknowledged every record so far (``live``), so an allow is answered
only after the stream stored its record (a JetStream publish ack is sent once the stream
stored the message; for a replicated stream, once a quorum did).

When JetStream does not acknowledge within ``ack_timeout`` (server down, stream missing or
full, quorum lost), the sink turns to ``spooling``: commits stop waiting for acks and rely
on the local file, which the log makes durable, so that file is the spool. A background
task keeps trying; when JetStream answers again it replays everything after the last
acknowledged seq from disk, in order (duplicates of records that did land are dropped by
the stream's duplicate window), and goes back to ``live``. A bounded spool
(``max_bytes``, ``max_age``) refuses new records once it is full or too old: the log then
raises AuditError and the service denies with ``audit_unavailable`` until the spool
drained. State changes are reported through ``on_state`` as ``audit.sink_degraded`` and
``audit.sink_recovered`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from authsvc.audit.spool import Cursor, LocalRecords, Pending, newest_seq, prune
from authsvc.audit.stream import Conn, StreamSpec, ensure_stream
from authsvc.errors import AuditError

log = logging.getLogger("authsvc.audit")

StateHook = Callable[[str, dict[str, Any]], None]


class SinkState(StrEnum):
    """``catchup``: replaying from disk, commits still wait; ``live``: publishing as
    records come; ``spooling``: JetStream failed, commits rely on the local file."""

    CATCHUP = "catchup"
    LIVE = "live"
    SPOOLING = "spooling"


@dataclass(frozen=True, slots=True)
class SinkConfig:
    subject: str
    stream: StreamSpec
    create_stream: bool = True
    ack_timeout: float = 1.0
    retry_interval: float = 1.0
    max_bytes: int | None = None       # None: unbounded (the file is the primary log)
    max_age: float | None = None       # seconds of spooling before refusing records
    prune: bool = False                # delete acknowledged rotated files (spool only)
    batch: int = 256


class JetStreamSink:
    """See the module docstring. ``start()`` inside the running loop; ``aclose()`` at the end."""

    def __init__(self, active: Path, connect: Callable[[], Awaitable[Conn]],
                 config: SinkConfig, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.active = active
        self.config = config
        self.on_state: StateHook | None = None
        self._connect = connect
        self._now = monotonic
        self._records = LocalRecords(active)
        self._cursor = Cursor(active)
        self._conn: Conn | None = None
        self._inbox = ""
        self._stream_ok = False
        self.state = SinkState.CATCHUP
        self._since: float | None = None   # when spooling began
        self.acked = 0                     # every seq <= acked is in the stream
        self._above: set[int] = set()      # acknowledged seqs above ``acked``
        self.last = 0                      # highest seq appended
        self._sizes: dict[int, int] = {}   # seq -> bytes, for a bounded spool
        self.backlog = 0                   # bytes of records after ``acked``
        self._outbox: deque[Pending] = deque()
        self._sent: dict[int, float] = {}  # live: seq -> when published
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._failed = ""
        self._task: asyncio.Task[None] | None = None
        self._saved = (0, 0.0)             # (seq, when) of the last cursor write
        self.stats = {"published": 0, "duplicates": 0, "replayed": 0, "errors": 0}

    # -- the log's side ----------------------------------------------------------------

    def start(self) -> None:
        """Resume from the cursor and local files, then connect and catch up in the background."""
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not inside the service's loop yet; the next call starts it
        self.last = max(self.last, newest_seq(self.active))
        # A cursor ahead of the local files (files replaced) must not hide new records.
        self.acked = min(self._cursor.load(), self.last)
        if self.config.max_bytes is not None:
            self._sizes = self._records.sizes_after(self.acked)
            self.backlog = sum(self._sizes.values())
        self._task = loop.create_task(self._run())
        self._task.add_done_callback(_report_end)

    def admit(self, size: int) -> None:
        """Raise AuditError when a bounded spool cannot take ``size`` more bytes."""
        if self.config.max_bytes is None or self.state is SinkState.LIVE:
            return
        if self.backlog + size + 1 > self.config.max_bytes:
            raise AuditError(f"audit spool full ({self.backlog} bytes not yet in JetStream)")
        age = self.config.max_age
        if age is not None and self._since is not None and self._now() - self._since > age:
            raise AuditError(f"JetStream unreachable for over {age:g}s (audit spool max age)")

    def append(self, line: bytes, *, event_id: str, seq: int) -> None:
        """Note a record the log wrote locally; publish it now when live."""
        if self._task is None:
            self.start()
        self.last = max(self.last, seq)
        if self.config.max_bytes is not None:
            self._sizes[seq] = len(line) + 1
            self.backlog += len(line) + 1
        if self.state is SinkState.LIVE:
            self._outbox.append(Pending(seq, event_id, line))
            self._wake.set()

    async def commit(self) -> None:
        """Return once JetStream acknowledged everything so far, or the spool took over."""
        if self.acked >= self.last or self.state is SinkState.SPOOLING:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self.last, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.config.ack_timeout)
        except TimeoutError:
            self._degrade("ack_timeout")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._housekeeping(final=True)

    async def aclose(self) -> None:
        """Stop the background task, store the cursor durably, close the connection."""
        self.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail
                await self._conn.close()
            self._conn = None

    # -- acknowledgements --------------------------------------------------------------

    async def _on_ack(self, msg: Any) -> None:
        try:
            seq = int(msg.subject.rsplit(".", 1)[1])
        except (ValueError, IndexError):
            return
        headers = msg.headers or {}
        error = f"status_{headers['Status']}" if headers.get("Status") else ""
        if not error:
            try:
                answer = json.loads(msg.data)
                error = "stream_error" if "error" in answer else ""
                if answer.get("duplicate"):
                    self.stats["duplicates"] += 1
            except (ValueError, AttributeError):
                error = "malformed_ack"
        if error:
            self._fail(error, seq)
        else:
            self._acknowledge(seq)

    def _fail(self, code: str, seq: int) -> None:
        self.stats["errors"] += 1
        if seq > self.acked:
            log.warning("JetStream refused audit record seq %d (%s)", seq, code)
            self._failed = code
            self._progress.set()
            if self.state is SinkState.LIVE:
                self._degrade(code)

    def _acknowledge(self, seq: int) -> None:
        self._sent.pop(seq, None)
        if seq <= self.acked:
            return
        self._above.add(seq)
        while self.acked + 1 in self._above:
            self.acked += 1
            self._above.discard(self.acked)
            self.backlog -= self._sizes.pop(self.acked, 0)
        while self._waiters and self._waiters[0][0] <= self.acked:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._progress.set()

    def _degrade(self, code: str) -> None:
        """Stop waiting for JetStream: the local file carries the records from here."""
        if self.state is SinkState.SPOOLING:
            return
        log.error("audit JetStream sink degraded (%s): spooling records after seq %d",
                  code, self.acked)
        self.state, self._since, self._stream_ok = SinkState.SPOOLING, self._now(), False
        self._outbox.clear()
        self._sent.clear()
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._wake.set()
        self._emit("audit.sink_degraded", {"sink": "jetstream", "reason": code,
                                           "acked_seq": self.acked})

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        if self.on_state is not None:
            self.on_state(kind, fields)

    # -- the background task -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._ready()
            except AuditError as exc:
                log.warning("audit JetStream sink not ready: %s", exc)
                if self.state is SinkState.CATCHUP and self._waiters:
                    self._degrade("unreachable")
                await asyncio.sleep(self.config.retry_interval)
                continue
            try:
                if self.state is SinkState.LIVE:
                    await self._pump()
                else:
                    await self._drain()
                self._housekeeping()
            except (AuditError, OSError) as exc:  # local files unreadable: retry, visibly
                log.error("audit JetStream sink: %s", exc)
                await asyncio.sleep(self.config.retry_interval)

    async def _ready(self) -> None:
        if self._conn is None:
            try:
                conn = await self._connect()
            except Exception as exc:  # the connector's own errors, reported and retried
                raise AuditError(f"cannot connect: {type(exc).__name__}: {exc}") from None
            self._inbox = conn.new_inbox()
            await conn.subscribe(f"{self._inbox}.*", cb=self._on_ack)
            self._conn = conn
        if not self._stream_ok:
            check = await ensure_stream(self._conn, self.config.stream,
                                        create=self.config.create_stream)
            if check.weaknesses:
                raise AuditError(f"stream settings weaker than required: "
                                 f"{', '.join(check.weaknesses)}; see docs/audit.md")
            if check.created:
                log.info("created JetStream stream for the audit log")
            self._stream_ok = True

    async def _publish(self, record: Pending) -> None:
        assert self._conn is not None
        await self._conn.publish(self.config.subject, record.line,
                                 reply=f"{self._inbox}.{record.seq}",
                                 headers={"Nats-Msg-Id": record.event_id})
        self.stats["published"] += 1

    async def _pump(self) -> None:
        """Live: publish records as they come; a record unacknowledged too long degrades."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.config.ack_timeout / 2)
        self._wake.clear()
        try:
            while self._outbox and self.state is SinkState.LIVE:
                record = self._outbox.popleft()
                self._sent[record.seq] = self._now()
                await self._publish(record)
        except Exception as exc:  # e.g. the client's outbound buffer is full
            self._degrade(f"publish_failed:{type(exc).__name__}")
            return
        oldest = min(self._sent.values(), default=None)
        if oldest is not None and self._now() - oldest > self.config.ack_timeout:
            self._degrade("ack_timeout")

    async def _drain(self) -> None:
        """Replay the next batch after ``acked`` from disk; go live when nothing is left."""
        batch = self._records.after(self.acked, limit=self.config.batch)
        if not batch:
            if self.acked >= self.last:
                self._go_live()
            else:
                log.error("audit records after seq %d are neither acknowledged nor on disk",
                          self.acked)
                await asyncio.sleep(self.config.retry_interval)
            return
        self._failed = ""
        try:
            for record in batch:
                await self._publish(record)
        except Exception as exc:  # the client's own errors, retried
            self._failed = f"publish_failed:{type(exc).__name__}"
        if not self._failed and await self._acked_through(batch[-1].seq):
            self.stats["replayed"] += len(batch)
            return
        if self.state is SinkState.CATCHUP:
            self._degrade(self._failed or "ack_timeout")
        self._stream_ok = False
        await asyncio.sleep(self.config.retry_interval)

    async def _acked_through(self, seq: int) -> bool:
        deadline = self._now() + self.config.ack_timeout
        while self.acked < seq and not self._failed:
            self._progress.clear()
            left = deadline - self._now()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        return self.acked >= seq

    def _go_live(self) -> None:
        was, since = self.state, self._since
        self.state, self._since = SinkState.LIVE, None
        self._sizes.clear()
        self.backlog = 0
        if was is SinkState.SPOOLING:
            spooled = round(self._now() - since, 3) if since is not None else 0.0
            log.info("audit JetStream sink recovered after %.1fs", spooled)
            self._emit("audit.sink_recovered", {"sink": "jetstream", "acked_seq": self.acked,
                                                "spooled_seconds": spooled})

    def _housekeeping(self, *, final: bool = False) -> None:
        """Write the cursor (lazily; durably when ``final``), prune acknowledged spool files."""
        seq, when = self._saved
        if final or (self.acked != seq and self._now() - when >= 0.2):
            self._cursor.store(self.acked, durable=final)
            self._saved = (self.acked, self._now())
            if self.config.prune:
                try:
                    prune(self.active, self.acked)
                except (AuditError, OSError) as exc:
                    log.warning("cannot prune the audit spool: %s", exc)


def _report_end(task: asyncio.Task[None]) -> None:
    """The forwarding task only ends when cancelled; anything else must not pass silently."""
    if not task.cancelled() and task.exception() is not None:
        log.error("audit JetStream sink stopped: %r; records now only reach the spool",
                  task.exception())
