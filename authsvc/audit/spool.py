"""The local side of the JetStream sink: records not yet acknowledged, read back from disk.

Every record is written to the local file first (``FileSink``), then published. The file
is therefore the spool: whatever JetStream has not acknowledged is read back from it, in
``seq`` order, and published again (its event id is the ``Nats-Msg-Id``, so a record that
did land before is deduplicated by the stream). ``Cursor`` remembers the highest
acknowledged ``seq`` across restarts; it is written lazily, since a stale cursor only
causes records to be offered again. With ``audit.sink: jetstream`` the files are only a
spool: ``prune`` deletes rotated files whose records were all acknowledged, but always
keeps the newest record, from which the chain resumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from authsvc.audit.files import fsync_dir, log_files, tail

log = logging.getLogger("authsvc.audit")


@dataclass(frozen=True, slots=True)
class Pending:
    """A record to publish: its chain position, ``Nats-Msg-Id`` and canonical line."""

    seq: int
    event_id: str
    line: bytes


def _parse(raw: bytes) -> Pending | None:
    try:
        record = json.loads(raw)
        seq, ident = record.get("seq"), record.get("event_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(seq, int) or not isinstance(ident, str):
        return None  # unchained (schema v1) or unreadable: not part of the chain
    return Pending(seq, ident, raw)


def last_seq(path: Path) -> int:
    """The seq of the last complete record in ``path`` (0 if none)."""
    line, _ = tail(path)
    found = _parse(line) if line else None
    return found.seq if found else 0


def newest_seq(active: Path) -> int:
    """The seq of the newest record in the active file or, if it has none, a rotated one."""
    for path in reversed(log_files(active)):
        seq = last_seq(path)
        if seq:
            return seq
    return 0


class LocalRecords:
    """Reads chained records after a given seq from the active file and its rotated ones.

    Remembers where the last read stopped (file, inode, offset), so a drain that moves
    forward does not rescan; a rotation (new inode) or a step back rescans, skipping whole
    files whose last record is already acknowledged.
    """

    def __init__(self, active: Path) -> None:
        self.active = active
        self._at: tuple[Path, int, int, int] | None = None  # path, inode, offset, last seq

    def after(self, seq: int, *, limit: int) -> list[Pending]:
        found: list[Pending] = []
        for path, offset in self._start(seq):
            self._read(path, offset, seq, limit, found)
            if len(found) >= limit:
                break
        return found

    def _start(self, seq: int) -> list[tuple[Path, int]]:
        files = log_files(self.active)
        if self._at is not None:
            path, inode, offset, last = self._at
            if last <= seq and path in files and _inode(path) == inode:
                index = files.index(path)
                return [(path, offset)] + [(p, 0) for p in files[index + 1:]]
        return [(p, 0) for p in files if last_seq(p) > seq]

    def _read(self, path: Path, offset: int, seq: int, limit: int,
              found: list[Pending]) -> None:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            inode = os.fstat(handle.fileno()).st_ino
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # a torn tail: never a complete record
                offset += len(raw)
                record = _parse(raw[:-1])
                if record is None or record.seq <= seq:
                    continue
                found.append(record)
                self._at = (path, inode, offset, record.seq)
                if len(found) >= limit:
                    break

    def sizes_after(self, seq: int) -> dict[int, int]:
        """seq -> bytes of every record after ``seq`` (what a bounded spool counts)."""
        sizes: dict[int, int] = {}
        while batch := self.after(seq, limit=1024):
            sizes.update((p.seq, len(p.line) + 1) for p in batch)
            seq = batch[-1].seq
        return sizes


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -1


def prune(active: Path, acked: int) -> int:
    """Delete rotated files whose records were all acknowledged; returns how many.

    The newest file holding a record is kept whatever its state: the chain resumes from it.
    """
    files = log_files(active)
    holder = next((p for p in reversed(files) if last_seq(p) > 0), None)
    deleted = 0
    for path in files:
        if path in (active, holder):
            break
        last = last_seq(path)
        if last == 0 or last > acked:
            break
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
    if deleted:
        fsync_dir(active.parent)
    return deleted


class Cursor:
    """The highest contiguously acknowledged seq, in ``<name>.jetstream-acked`` by the log."""

    def __init__(self, active: Path) -> None:
        self.path = active.with_name(active.stem + ".jetstream-acked")

    def load(self) -> int:
        try:
            return int(self.path.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return 0

    def store(self, seq: int, *, durable: bool = False) -> None:
        """Write in place; ``durable`` fsyncs (at shutdown). Failures are only logged."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o640)
            try:
                os.pwrite(fd, f"{seq:020d}\n".encode(), 0)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot store the JetStream cursor %s: %s", self.path, exc.strerror)
