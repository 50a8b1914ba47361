"""Where audit records go. The service answers an allow only after ``append`` returned.

Version 1 writes JSON lines to a file opened in append mode and flushes each batch to the
OS; ``fsync=True`` also forces it to disk. A failed write raises ``AuditError``, which the
service turns into a deny (``audit_unavailable``): nobody is admitted unaudited.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Protocol

from authsvc.errors import AuditError


class AuditSink(Protocol):
    def append(self, line: bytes) -> None:
        """Persist one canonical record. Raises AuditError on failure."""
        ...

    def close(self) -> None: ...


class FileSink:
    """Append-only JSON lines file."""

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        self._file: BinaryIO | None = None

    def _open(self) -> BinaryIO:
        if self._file is None or self._file.closed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_APPEND: every write lands at the end even with several writers.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                self._file = os.fdopen(fd, "ab", buffering=0)
            except OSError as exc:
                raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from exc
        return self._file

    def append(self, line: bytes) -> None:
        handle = self._open()
        try:
            handle.write(line + b"\n")
            if self._fsync:
                os.fsync(handle.fileno())
        except OSError as exc:
            self.close()
            raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
