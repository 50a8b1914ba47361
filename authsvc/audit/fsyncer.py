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

_Job = tuple[asyncio.AbstractEventLoop, int, "asyncio.Future[None]"]


def _settle(future: asyncio.Future[None], error: OSError | None) -> None:
    if future.done():  # the waiter was cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Fsyncer:
    """``await fsyncer.fsync(fd)`` runs ``os.fsync(fd)`` on the fsync thread."""

    def __init__(self, name: str = "authsvc-fsync") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None

    async def fsync(self, fd: int) -> None:
        """Raises OSError from fsync."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, args=(self._jobs,),
                                            name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._jobs.put((loop, fd, future))
        await future

    @staticmethod
    def _run(jobs: queue.SimpleQueue[_Job | None]) -> None:
        while (job := jobs.get()) is not None:
            loop, fd, future = job
            error: OSError | None = None
            try:
                os.fsync(fd)
            except OSError as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed while we synced
                loop.call_soon_threadsafe(_settle, future, error)

    def stop(self) -> None:
        """Let the thread finish the jobs it has and exit; a later fsync starts a new one."""
        if self._thread is not None:
            self._jobs.put(None)
            self._jobs = queue.SimpleQueue()
        self._thread = None
