"""The JetStream stream that holds audit records: its settings, creation, and reading it back.

Every instance publishes its chain to ``authsvc.audit.<instance>`` in the stream
``AUTHSVC_AUDIT``. The settings that protect the records (JetStream stream
configuration, nats-server ``server/stream.go``):

* ``deny_delete`` / ``deny_purge``: no message can be removed through the API; nats-server
  refuses to unset either on update.
* ``discard: new``: a full stream refuses writes (the sink fails closed, visibly) instead of
  silently dropping the oldest records (``discard: old``, the default).
* ``allow_rollup_hdrs: false``, ``allow_msg_ttl: false``, no ``persist_mode: async`` (which
  may acknowledge before the write is stored), ``duplicate_window`` long enough for the
  spool to replay records after an outage without storing them twice.
* ``allow_direct: true``: records are read back with batched direct gets (nats-server 2.11+),
  which need no consumer and so no consumer permissions.

The connection is injected (``Conn``): this module never imports the NATS client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from authsvc.errors import AuditError

STREAM = "AUTHSVC_AUDIT"
SUBJECT_PREFIX = "authsvc.audit"
SUBJECTS = f"{SUBJECT_PREFIX}.>"
API = "$JS.API"
STREAM_NOT_FOUND = 10059  # JSStreamNotFoundErr (nats-server errors.json)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class Msg(Protocol):
    """A received message (nats-py ``Msg`` fits)."""

    subject: str
    data: bytes
    headers: dict[str, str] | None


class Conn(Protocol):
    """The few NATS client calls the audit sink needs (nats-py ``Client`` fits)."""

    async def publish(self, subject: str, payload: bytes = b"", reply: str = "",
                      headers: dict[str, str] | None = None) -> None: ...

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 0.5) -> Any: ...

    async def subscribe(self, subject: str, queue: str = "",
                        cb: Callable[[Any], Awaitable[None]] | None = None) -> Any: ...

    def new_inbox(self) -> str: ...

    async def flush(self, timeout: int = 10) -> None: ...

    async def close(self) -> None: ...


def subject_for(instance: str) -> str:
    """``authsvc.audit.<instance>``; dots in the instance (host names) become tokens."""
    tokens = instance.split(".")
    if not instance or not all(_TOKEN.match(token) for token in tokens):
        raise AuditError(f"audit.instance {instance!r} cannot name a NATS subject: use "
                         "letters, digits, '_', '-' and single dots")
    return f"{SUBJECT_PREFIX}.{instance}"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What ``stream-init`` creates; see the module docstring for why each value."""

    replicas: int = 1
    max_age: timedelta = timedelta(days=400)
    max_bytes: int = -1
    duplicate_window: timedelta = timedelta(minutes=10)

    def config(self) -> dict[str, Any]:
        """The ``$JS.API.STREAM.CREATE`` request body."""
        return {
            "name": STREAM, "subjects": [SUBJECTS], "description": "authsvc audit records",
            "retention": "limits", "storage": "file", "num_replicas": self.replicas,
            "max_age": _nanos(self.max_age), "max_bytes": self.max_bytes, "max_msgs": -1,
            "max_msg_size": -1, "discard": "new",
            "duplicate_window": _nanos(self.duplicate_window),
            "deny_delete": True, "deny_purge": True, "allow_rollup_hdrs": False,
            "allow_direct": True, "allow_msg_ttl": False, "sealed": False,
        }


def _nanos(span: timedelta) -> int:
    return int(span.total_seconds() * 1_000_000_000)


def weaknesses(config: dict[str, Any], spec: StreamSpec | None = None) -> list[str]:
    """Codes for every setting of an existing stream weaker than ``StreamSpec`` requires."""
    found = []
    if not config.get("deny_delete"):
        found.append("deny_delete_off")
    if not config.get("deny_purge"):
        found.append("deny_purge_off")
    if config.get("discard", "old") != "new":
        found.append("discard_old")
    if config.get("allow_rollup_hdrs"):
        found.append("rollup_allowed")
    if config.get("allow_msg_ttl"):
        found.append("msg_ttl_allowed")
    if config.get("persist_mode") == "async":
        found.append("persist_async")
    if not config.get("allow_direct"):
        found.append("direct_get_off")
    if SUBJECTS not in config.get("subjects", []):
        found.append("subjects_missing")
    wanted = spec or StreamSpec()
    if int(config.get("duplicate_window", 0)) < _nanos(wanted.duplicate_window):
        found.append("duplicate_window_short")
    return found


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """What ``ensure_stream`` found (or made)."""

    created: bool
    config: dict[str, Any]
    state: dict[str, Any]
    weaknesses: list[str] = field(default_factory=list)


async def api(conn: Conn, subject: str, body: dict[str, Any] | None = None, *,
              timeout: float = 2.0) -> dict[str, Any]:
    """One JetStream API call; foreign errors (timeout, no responders) become AuditError."""
    payload = json.dumps(body).encode() if body is not None else b""
    try:
        reply = await conn.request(f"{API}.{subject}", payload, timeout=timeout)
        answer = json.loads(reply.data)
    except Exception as exc:  # the client's own error types stay at this boundary
        raise AuditError(f"JetStream API {subject} failed: {type(exc).__name__}") from None
    if not isinstance(answer, dict):
        raise AuditError(f"JetStream API {subject} answered with a non-object")
    return answer


async def ensure_stream(conn: Conn, spec: StreamSpec, *, create: bool) -> StreamCheck:
    """The stream's settings, creating it from ``spec`` when it is missing and allowed."""
    info = await api(conn, f"STREAM.INFO.{STREAM}")
    error = info.get("error")
    created = False
    if isinstance(error, dict) and error.get("err_code") == STREAM_NOT_FOUND:
        if not create:
            raise AuditError(f"stream {STREAM} does not exist; run `authsvc audit stream-init`")
        info = await api(conn, f"STREAM.CREATE.{STREAM}", spec.config())
        error, created = info.get("error"), True
    if isinstance(error, dict):
        raise AuditError(f"stream {STREAM}: {error.get('description', 'error')} "
                         f"(err_code {error.get('err_code')})")
    config = info.get("config") or {}
    return StreamCheck(created=created, config=config, state=info.get("state") or {},
                       weaknesses=weaknesses(config, spec))


@dataclass(frozen=True, slots=True)
class StoredMsg:
    """One message read back from the stream."""

    stream_seq: int
    subject: str
    msg_id: str
    data: bytes


async def read_stream(conn: Conn, *, start: int = 1, batch: int = 256,
                      timeout: float = 5.0) -> AsyncIterator[StoredMsg]:
    """Every message from stream sequence ``start`` on, via batched direct gets."""
    inbox = conn.new_inbox()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def deliver(msg: Any) -> None:
        queue.put_nowait(msg)

    sub = await conn.subscribe(inbox, cb=deliver)
    seq = start
    try:
        while True:
            body = json.dumps({"seq": seq, "batch": batch}).encode()
            await conn.publish(f"{API}.DIRECT.GET.{STREAM}", body, reply=inbox)
            while True:
                try:
                    msg = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    raise AuditError(f"reading stream {STREAM} timed out at seq {seq}") from None
                headers = msg.headers or {}
                status = headers.get("Status")
                if status == "404":
                    return  # nothing at or after seq
                if status == "204":  # end of this batch
                    if headers.get("Nats-Num-Pending", "0") == "0":
                        return
                    break
                if status:
                    raise AuditError(f"reading stream {STREAM} failed with status {status}")
                stored = StoredMsg(int(headers["Nats-Sequence"]), headers.get("Nats-Subject", ""),
                                   headers.get("Nats-Msg-Id", ""), bytes(msg.data))
                seq = stored.stream_seq + 1
                yield stored
    finally:
        await sub.unsubscribe()
