"""Where audit records go. The service answers an allow only after ``commit`` returned.

``FileSink`` appends JSON lines to a file opened with O_APPEND. ``append`` hands the line to
the OS at once; ``commit`` makes everything appended so far durable. With ``fsync=True`` (the
default) commits are grouped: every caller waiting at the same moment shares one
``fsync``, which runs on a dedicated thread (``Fsyncer``) so the event loop keeps serving.
A failed write or fsync raises ``AuditError``, which the service turns into a deny
(``audit_unavailable``): nobody is admitted unaudited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from authsvc.audit.files import fsync_dir
from authsvc.audit.fsyncer import Fsyncer, FsyncStats
from authsvc.errors import AuditError


class AuditSink(Protocol):
    """Where chained record lines go; see the module docstring for the commit contract."""

    def append(self, line: bytes, *, event_id: str = "") -> None:
        """Hand one canonical record to the sink. Raises AuditError on failure."""
        ...

    async def commit(self) -> None:
        """Return once every appended record is durable. Raises AuditError on failure."""
        ...

    def close(self) -> None: ...


class RemoteSink(Protocol):
    """A second sink fed from the file (``authsvc.audit.jetstream.JetStreamSink`` fits)."""

    on_state: Callable[[str, dict[str, Any]], None] | None

    def start(self) -> None:
        """Begin forwarding (inside the running loop); called once the chain is resumed."""
        ...

    def admit(self, size: int) -> None:
        """Raise AuditError when a record of ``size`` bytes may not be taken now."""
        ...

    def append(self, line: bytes, *, event_id: str, seq: int) -> None: ...

    async def commit(self) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class FileSink:
    """Append-only JSON lines file with group-committed fsync and rotation by rename."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._file: BinaryIO | None = None
        self._retired: list[BinaryIO] = []  # rotated away while an fsync was running
        self._fsyncer = Fsyncer()
        self.size = 0
        self.records = 0  # lines appended since start, for /metrics
        self._waiting: asyncio.Future[None] | None = None  # the next fsync's waiters
        self._flusher: asyncio.Task[None] | None = None

    def _open(self) -> BinaryIO:
        if self._file is None or self._file.closed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND: every write lands at the end even with several writers.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                self._file = os.fdopen(fd, "ab", buffering=0)
                self.size = os.fstat(fd).st_size
                if self.size == 0 and self._fsync:
                    fsync_dir(self.path.parent)  # a new file's name must survive a crash too
            except OSError as exc:
                raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from exc
        return self._file

    def append(self, line: bytes, *, event_id: str = "") -> None:
        handle = self._open()
        try:
            written = handle.write(line + b"\n")
        except OSError as exc:
            self.close()
            raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from exc
        if written != len(line) + 1:
            self.close()
            raise AuditError(f"short write to audit log {self.path}")
        self.size += written
        self.records += 1

    @property
    def fsync_stats(self) -> FsyncStats:
        """The fsync thread's counters (zero with ``fsync=False``)."""
        return self._fsyncer.stats

    def rotate(self, to: Path) -> None:
        """Make the active file durable, rename it to ``to``; the next append starts anew."""
        old = self._file
        try:
            if old is not None and not old.closed:
                os.fsync(old.fileno())  # rare, so done inline: the old file is complete
            if self.path.exists():
                os.rename(self.path, to)
                fsync_dir(self.path.parent)
        except OSError as exc:
            raise AuditError(f"cannot rotate audit log {self.path}: {exc.strerror}") from exc
        self._file = None
        self.size = 0
        if old is not None:
            if self._flusher is not None and not self._flusher.done():
                self._retired.append(old)  # the running fsync still holds its descriptor
            else:
                with contextlib.suppress(OSError):
                    old.close()

    async def commit(self) -> None:
        if not self._fsync:
            return
        if self._waiting is None:
            self._waiting = asyncio.get_running_loop().create_future()
        waiter = self._waiting
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(waiter)

    async def _flush(self) -> None:
        # Records appended while an fsync runs join the next group, never the current one.
        while self._waiting is not None:
            group, self._waiting = self._waiting, None
            try:
                fd = self._open().fileno()
                await self._fsyncer.fsync(fd)
            except (OSError, AuditError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                group.set_exception(AuditError(f"cannot fsync audit log {self.path}: {reason}"))
                group.exception()  # mark retrieved: waiters may have given up
            else:
                group.set_result(None)
        for old in self._retired:
            with contextlib.suppress(OSError):
                old.close()
        self._retired.clear()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        self._fsyncer.stop()
