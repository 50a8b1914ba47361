"""The audit log on disk: one active file plus rotated ones, and a lock for one writer.

``audit.jsonl`` is the active file; rotation renames it to ``audit.jsonl.<UTC time>`` (e.g.
``audit.jsonl.20261124T225159.123456Z``) and starts a new one, so names sort in time order
and the chain continues from the last record of the previous file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from datetime import datetime
from pathlib import Path

from authsvc.errors import AuditError

ROTATED = re.compile(r"\.(\d{8}T\d{6}\.\d{6}Z)$")
_TAIL_CHUNK = 64 * 1024
_TAIL_LIMIT = 8 * 1024 * 1024  # a record is far smaller; stop looking after this


def rotated_name(active: Path, at: datetime) -> Path:
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    candidate = active.with_name(f"{active.name}.{stamp}")
    bump = 0
    while candidate.exists():  # two rotations in one microsecond: keep both
        bump += 1
        candidate = active.with_name(f"{active.name}.{stamp[:-1]}{bump:02d}Z")
    return candidate


def log_files(active: Path) -> list[Path]:
    """Rotated files of ``active`` in time order, then ``active`` itself if it exists."""
    rotated = sorted(p for p in active.parent.glob(f"{active.name}.*")
                     if ROTATED.search(p.name[len(active.name):]))
    return [*rotated, *([active] if active.exists() else [])]


def tail(path: Path) -> tuple[bytes | None, int]:
    """The last complete line of ``path`` (without newline) and the size of a torn tail.

    A torn tail (bytes after the last newline) is what a crash mid-write leaves behind.
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            end, data = size, b""
            while end > 0 and size - end < _TAIL_LIMIT:
                start = max(0, end - _TAIL_CHUNK)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
                if data.count(b"\n") >= 2 or (end == 0):
                    break
    except FileNotFoundError:
        return None, 0
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    cut = data.rfind(b"\n")
    torn = len(data) - cut - 1
    if cut < 0:
        return None, torn
    start = data.rfind(b"\n", 0, cut) + 1
    return data[start:cut], torn


def fsync_dir(folder: Path) -> None:
    """Make a created or renamed directory entry durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriterLock:
    """An exclusive flock on ``<active>.lock``: two writers on one chain would fork it."""

    def __init__(self, active: Path) -> None:
        self.path = active.with_name(active.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise AuditError(f"cannot open audit lock {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AuditError(f"audit log {self.path.with_suffix('')} is in use by another "
                             "writer; give each instance its own audit.path") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
