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
from collections.abc import Callable
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


class WriterHeld(AuditError):
    """Another writer (another process, as a rule) holds the writer lock of an audit log."""


# Lock files claimed ahead of their writer (``claim``), by absolute path: flock belongs to an
# open file, so the writer must inherit this descriptor; a second open would be refused.
_claimed: dict[str, int] = {}


def lock_path(active: Path) -> Path:
    """The writer lock beside ``active``: a file of its own, so rotation (a rename of
    ``active``) never moves it."""
    return active.with_name(active.name + ".lock")


def claim(active: Path) -> Callable[[], None]:
    """Take the writer lock of ``active`` now, before anything is written, for the first
    ``WriterLock`` of this process on ``active`` to inherit; returns how to let it go again
    if none did. Raises ``WriterHeld`` when another process holds it.

    ``serve`` claims at startup: a writer takes its lock only with its first record, after
    the service has joined the queue group.
    """
    key = os.path.abspath(lock_path(active))
    if key in _claimed:  # claimed here already, for a writer yet to come
        raise WriterHeld(f"audit log {active} is claimed by another writer in this process")
    _claimed[key] = fd = _lock(lock_path(active))

    def release() -> None:
        if _claimed.get(key) == fd:  # not yet taken over by a writer
            del _claimed[key]
            with contextlib.suppress(OSError):
                os.close(fd)

    return release


def _lock(path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive flock (released when it is closed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as exc:
        raise AuditError(f"cannot open audit lock {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise WriterHeld(f"audit log {path.with_suffix('')} is in use by another writer; "
                         "give each instance its own audit.path") from None
    return fd


class WriterLock:
    """An exclusive flock on ``<active>.lock``: two writers on one chain would fork it."""

    def __init__(self, active: Path) -> None:
        self.path = lock_path(active)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        claimed = _claimed.pop(os.path.abspath(self.path), None)
        self._fd = claimed if claimed is not None else _lock(self.path)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
