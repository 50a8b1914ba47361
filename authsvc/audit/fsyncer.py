"""A long-lived thread that fsyncs on request, for the event loop's group commits.

``asyncio.to_thread`` costs about 150 µs of CPU per round trip here (executor bookkeeping,
two thread wake-ups); a dedicated thread fed by a ``SimpleQueue`` costs about 70 µs. With
one fsync per connect at moderate load that difference is a large share of authsvc's CPU
per connect (measured with bench.connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass

_Job = tuple[asyncio.AbstractEventLoop, int, "asyncio.Future[None]"]


def _settle(future: asyncio.Future[None], error: OSError | None) -> None:
    if future.done():  # the waiter was cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


@dataclass
class FsyncStats:
    """What the fsync thread has done: fsyncs, their wall time, and the thread's CPU time
    (the fsync system call plus waking the loop). Written by the thread, read by /metrics;
    each field is replaced whole, so a reader never sees a torn value."""

    count: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def add(self, seconds: float, cpu_seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds


class Fsyncer:
    """``await fsyncer.fsync(fd)`` runs ``os.fsync(fd)`` on the fsync thread."""

    def __init__(self, name: str = "authsvc-fsync") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self.stats = FsyncStats()

    async def fsync(self, fd: int) -> None:
        """Raises OSError from fsync."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, args=(self._jobs, self.stats),
                                            name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._jobs.put((loop, fd, future))
        await future

    @staticmethod
    def _run(jobs: queue.SimpleQueue[_Job | None], stats: FsyncStats) -> None:
        while (job := jobs.get()) is not None:
            cpu, started = time.thread_time(), time.monotonic()
            loop, fd, future = job
            error: OSError | None = None
            try:
                os.fsync(fd)
            except OSError as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed while we synced
                loop.call_soon_threadsafe(_settle, future, error)
            stats.add(time.monotonic() - started, time.thread_time() - cpu)

    def stop(self) -> None:
        """Let the thread finish the jobs it has and exit; a later fsync starts a new one."""
        if self._thread is not None:
            self._jobs.put(None)
            self._jobs = queue.SimpleQueue()
        self._thread = None
