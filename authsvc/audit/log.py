"""AuditLog: the one writer of a chain. Envelope, hash chain, checkpoints, rotation, events.

Everything the service records goes through ``append`` (decisions) or ``event`` (service,
policy, key and server events), which stamp the envelope (``v``, ``type``, ``event_id``,
``instance``, ``time``) and chain the record (``seq``, ``prev_hash``, ``record_hash``)
before the line reaches the sink. ``await commit()`` returns once every record so far is
durable. The log resumes the chain from the last record on disk, so it runs on across
restarts and rotated files; a torn last line (a crash mid-write) is moved aside with its
file and noted in an ``audit.recovered`` event, never overwritten. A complete last line that
is not a chained record is not what a crash leaves: the log refuses to write after it
(AuditError naming the file) until someone has looked.

With a ``remote`` sink (JetStream, see ``authsvc.audit.jetstream``) every record also goes
there after it reached the file, and ``commit`` waits for both; the file is then the
remote's spool, and ``remote.admit`` may refuse a record before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import ChainHead, head_of, link
from authsvc.audit.files import WriterLock, log_files, rotated_name, tail
from authsvc.audit.ids import event_id
from authsvc.audit.keychange import KEY_CHANGED_TYPE, RecordedKeys, changed_fields, compare
from authsvc.audit.keystate import last_recorded
from authsvc.audit.record import SCHEMA_VERSION, iso
from authsvc.audit.sink import FileSink, RemoteSink
from authsvc.errors import AuditError

log = logging.getLogger("authsvc.audit")
_HASH = re.compile(r"[0-9a-f]{64}")


class Clock(Protocol):
    """authsvc.clock.Clock fits; audit may not import it (dependency direction)."""

    def now(self) -> datetime: ...


class AuditWriter(Protocol):
    """What the service needs from the audit log."""

    def append(self, record: dict[str, Any]) -> None: ...

    def event(self, kind: str, **fields: Any) -> None: ...

    async def commit(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Rotation:
    """Start a new file when the active one reaches ``max_bytes`` or ``max_age`` (0 = never)."""

    max_bytes: int = 0
    max_age: timedelta = timedelta(0)


class AuditLog:
    """Chains records into a ``FileSink``; see the module docstring."""

    def __init__(self, sink: FileSink, *, instance: str, clock: Clock,
                 signer: cp.CheckpointSigner | None = None,
                 checkpoint_every: float = 300.0, rotation: Rotation | None = None,
                 remote: RemoteSink | None = None) -> None:
        self.sink = sink
        self.remote = remote
        if remote is not None:
            remote.on_state = self._sink_event
        self.instance = instance
        self._clock = clock
        self._signer = signer
        self._checkpoint_every = checkpoint_every
        self._rotation = rotation or Rotation()
        self._lock = WriterLock(sink.path)
        self._head: ChainHead | None = None  # None until the chain is resumed from disk
        self._unchecked_from = 1  # first seq not yet covered by a checkpoint
        self._file_since: datetime | None = None
        self._pending: list[dict[str, Any]] = []  # events to write right after resuming
        self._keys: dict[str, Any] | None = None  # the key set this run recorded at start
        self._ticker: asyncio.Task[None] | None = None

    @property
    def head(self) -> ChainHead | None:
        return self._head

    @property
    def signer_key(self) -> str | None:
        """The public key that verifies this log's checkpoints."""
        return self._signer.public_key if self._signer else None

    # -- writing -----------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        """Chain and write one record (``type`` and ``time`` set by the caller)."""
        self._resume()
        self._maybe_rotate()
        self._write(record)

    def event(self, kind: str, **fields: Any) -> None:
        """Record a non-decision event, e.g. ``event("policy.activated", revision=...)``.

        Raises AuditError when it cannot be written; the caller decides what that means.
        """
        self.append({"type": kind, "time": iso(self._clock.now()), **fields})

    async def commit(self) -> None:
        """Return once every record written so far is durable (and acknowledged remotely)."""
        if self.remote is None:
            await self.sink.commit()
        else:
            await asyncio.gather(self.sink.commit(), self.remote.commit())

    def _sink_event(self, kind: str, fields: dict[str, Any]) -> None:
        """A remote sink changed state: record it, after the caller has returned."""
        asyncio.get_running_loop().call_soon(self._safely, lambda: self.event(kind, **fields))

    def checkpoint(self) -> None:
        """Sign the chain head if records were added since the last checkpoint."""
        head = self._resume()
        if self._signer is None or head.seq < self._unchecked_from:
            return
        now = self._clock.now()
        point = cp.Checkpoint(chain=self.instance, seq_first=self._unchecked_from,
                              seq_last=head.seq, head=head.hash, time=iso(now) or "",
                              keys_sha256=cp.keys_digest(self._keys))
        record = {"type": cp.CHECKPOINT_TYPE, "time": point.time,
                  "checkpoint": cp.sign(point, self._signer)}
        if self._keys is not None:  # restated so the next start finds it near the end
            record["keys"] = self._keys
        self._write(record)
        self._unchecked_from = head.seq + 2  # the checkpoint record itself is covered next

    def _write(self, record: dict[str, Any]) -> None:
        head = self._head
        assert head is not None, "resume the chain before writing"
        now = self._clock.now()
        record.setdefault("time", iso(now))
        record["v"] = SCHEMA_VERSION
        record["event_id"] = ident = event_id(now)
        record["instance"] = self.instance
        line, new_head = link(record, head)
        if self.remote is not None:
            self.remote.admit(len(line))
        self.sink.append(line, event_id=ident)
        self._head = new_head
        if self.remote is not None:
            self.remote.append(line, event_id=ident, seq=new_head.seq)
        if self._file_since is None:
            self._file_since = now

    # -- lifecycle ----------------------------------------------------------------------

    def _resume(self) -> ChainHead:
        """The chain head, reading it from disk on first use (retried after failures)."""
        if self._head is not None:
            return self._head
        self._lock.acquire()
        head, torn = _last_head(self.sink.path)
        if torn:
            moved = rotated_name(self.sink.path, self._clock.now())
            self.sink.rotate(moved)
            log.warning("audit log ended in a torn record (%d bytes); moved it to %s and "
                        "continue the chain in a new file", torn, moved)
            self._pending.append({"type": "audit.recovered", "torn_file": moved.name,
                                  "torn_bytes": torn})
        self._head = head
        self._unchecked_from = head.seq + 1
        if self.remote is not None:
            self.remote.start()
        pending, self._pending = self._pending, []
        for record in pending:
            record.setdefault("time", iso(self._clock.now()))
            self._write(record)
        return self._head

    def _maybe_rotate(self) -> None:
        rule, now = self._rotation, self._clock.now()
        too_big = rule.max_bytes and self.sink.size >= rule.max_bytes
        too_old = (rule.max_age and self._file_since is not None
                   and now - self._file_since >= rule.max_age)
        if not (too_big or too_old):
            return
        self.checkpoint()  # each rotated file ends signed
        self.sink.rotate(rotated_name(self.sink.path, now))
        self._file_since = None

    def start(self, *, keys: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Record ``service.start`` (best effort) and start periodic checkpoints.

        ``keys`` is the key set in use (``keychange.key_set``), recorded with the start
        and restated by every checkpoint. When it differs from the set last recorded in
        the chain, a ``key.changed`` record naming the old and new key of each role that
        changed comes first.
        """
        self._safely(lambda: self._record_start(keys, fields))
        if self._signer is not None and self._checkpoint_every > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def _record_start(self, keys: Mapping[str, Any] | None, fields: dict[str, Any]) -> None:
        if keys is None:
            self.event("service.start", **fields)
            return
        head = self._resume()  # first: a torn file is moved aside before the search
        previous, current = self._previous_keys(), dict(keys)
        changes = compare(previous.keys, current) if previous is not None else ()
        if previous is not None and changes:
            # Before any record states the new set: if this write fails, nothing in the
            # chain claims the new keys and the next start finds the same change.
            log.warning("keys changed since seq %d: %s", previous.seq,
                        ", ".join(f"{c.role} {c.change.value}" for c in changes))
            self.event(KEY_CHANGED_TYPE, **changed_fields(previous, changes, current))
        elif previous is None and head.seq:
            log.warning("no key set is recorded in the local audit log; key changes since "
                        "the last run cannot be recorded")
        self._keys = current
        self.event("service.start", **fields, keys=current)

    def _previous_keys(self) -> RecordedKeys | None:
        try:
            return last_recorded(self.sink.path)
        except AuditError as exc:  # the start is still recorded, with its keys
            log.error("cannot read the key set last recorded: %s", exc)
            return None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_every)
            self._safely(self.checkpoint)
            with contextlib.suppress(AuditError):
                await self.commit()

    async def aclose(self, **fields: Any) -> None:
        """Record ``service.stop`` and a final checkpoint, make them durable, close."""
        if self._ticker is not None:
            self._ticker.cancel()
        self._safely(lambda: self.event("service.stop", **fields))
        self._safely(self.checkpoint)
        with contextlib.suppress(AuditError):
            await self.commit()
        if self.remote is not None:
            await self.remote.aclose()
        self.close()

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        self.sink.close()
        self._lock.release()

    @staticmethod
    def _safely(action: Any) -> None:
        try:
            action()
        except AuditError as exc:
            log.error("audit write failed: %s", exc)


def check_resumable(active: Path) -> None:
    """Raise AuditError when the writer could not continue the log at ``active`` (its last
    complete line is not a chained record, or the files cannot be read). Reads only."""
    _last_head(active)


def _last_head(active: Path) -> tuple[ChainHead, int]:
    """The head left by the newest record on disk, and the torn bytes of the active file.

    Only a torn tail (bytes after the last newline) is what a crash leaves: a write is one
    line ending in its newline. A complete last line that is not a chained record (not
    JSON, not an object, no ``seq``/``record_hash``) is damage or tampering; continuing
    after it would start a second chain at seq 1 or crash, so it is refused like an
    unreadable one. A schema-v1 record (``"v": 1``, before records were chained) ends a log
    written by an old version, and the chain begins after it, unless a chained record
    came earlier.
    """
    torn = 0
    files = log_files(active)
    for index, path in enumerate(reversed(files)):
        line, tail_bytes = tail(path)
        if index == 0 and path == active:
            torn = tail_bytes
        if line is None:
            continue
        head = _chained_head(line)
        if head is not None:
            return head, torn
        if _is_legacy(line) and not _chain_began(files):
            return ChainHead(), torn
        raise AuditError(f"audit log {path} ends in a record that is not a chained audit "
                         "record; run `authsvc audit verify` before writing to it again")
    return ChainHead(), torn


def _parsed(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _chained_head(line: bytes) -> ChainHead | None:
    record = _parsed(line)
    if not isinstance(record, dict):
        return None
    head = head_of(record)
    if head is None or isinstance(record.get("seq"), bool) or head.seq < 1 \
            or not _HASH.fullmatch(head.hash):
        return None
    return head


def _is_legacy(line: bytes) -> bool:
    record = _parsed(line)
    return (isinstance(record, dict) and record.get("v") == 1 and "seq" not in record
            and "record_hash" not in record)


def _chain_began(files: list[Path]) -> bool:
    """Whether any line of ``files`` is a chained record (read only for a v1 log's end)."""
    for path in files:
        try:
            with path.open("rb") as handle:
                if any(b'"record_hash"' in raw and _chained_head(raw.rstrip(b"\n"))
                       for raw in handle):
                    return True
        except OSError as exc:
            raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    return False
