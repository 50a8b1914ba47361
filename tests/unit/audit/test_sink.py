"""FileSink: append-only lines, group-committed fsync, failures as AuditError."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from authsvc.audit import FileSink
from authsvc.errors import AuditError


async def test_concurrent_commits_share_fsyncs(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    sink = FileSink(tmp_path / "a.jsonl", fsync=True)

    async def one(i: int) -> None:
        sink.append(b'{"n":%d}' % i)
        await sink.commit()

    await asyncio.gather(*(one(i) for i in range(50)))
    assert len((tmp_path / "a.jsonl").read_bytes().splitlines()) == 50
    assert 1 <= len(calls) <= 2  # one group, or two when the first fsync started early


async def test_without_fsync_commit_is_immediate(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "a.jsonl", fsync=False)
    sink.append(b"{}")
    await sink.commit()
    assert (tmp_path / "a.jsonl").read_bytes() == b"{}\n"


def test_full_disk_is_an_audit_error() -> None:
    sink = FileSink(Path("/dev/full"), fsync=False)
    with pytest.raises(AuditError):
        sink.append(b"{}")


def test_unopenable_path_is_an_audit_error(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(AuditError):
        FileSink(tmp_path / "dir").append(b"{}")


def test_appends_never_truncate(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"old":1}\n')
    sink = FileSink(path, fsync=False)
    sink.append(b'{"new":2}')
    sink.close()
    assert path.read_bytes() == b'{"old":1}\n{"new":2}\n'
