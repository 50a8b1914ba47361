"""Connect load generator: N asyncio workers doing raw-protocol NATS connects in a loop.

Raw protocol on non-blocking sockets driven by asyncio (``loop.sock_*``), not nats-py, so the
client is not the bottleneck: one attempt is a TCP connect, one read, one write and one or two
reads. Latency runs from the start of the TCP connect
to ``PONG`` (accepted) or ``-ERR`` (rejected). Every attempt that does not end in ``PONG`` is an
error and is reported by reason; a benchmark that counts a rejection as a connect is worthless.

Workers run continuously through warm-up and the measured window; an attempt belongs to the
window when it *completes* inside it, so throughput is not distorted by start-up or drain.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nacl.signing import SigningKey

from bench.wire import (
    MAX_SERVER_LINE,
    Reply,
    ServerInfo,
    WireError,
    classify,
    connect_line,
    error_text,
    parse_info,
)

#: RST on close (SO_LINGER 0) so tens of thousands of short connections do not leave the
#: client side of loopback full of TIME_WAIT sockets and run out of ephemeral ports.
_LINGER_RESET = struct.pack("ii", 1, 0)

#: After a connection-level failure (refused, reset) back off a little instead of spinning.
_ERROR_BACKOFF_S = 0.01


class Credentials(Protocol):
    """Produces the credential fields of CONNECT for one attempt."""

    def fields(self, info: ServerInfo) -> dict[str, str]:
        """CONNECT fields for a server that greeted us with *info*."""
        ...


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """``auth_token`` in CONNECT (nats-server ``authorization { token }``)."""

    token: str

    def fields(self, info: ServerInfo) -> dict[str, str]:
        """Return the token field; the greeting is irrelevant for token auth."""
        return {"auth_token": self.token}


class TokenPoolCredentials:
    """A different ``auth_token`` on each connect, round-robin through a pool (OIDC JWTs)."""

    def __init__(self, tokens: list[str]) -> None:
        """*tokens* must not be empty."""
        if not tokens:
            raise ValueError("empty token pool")
        self._tokens = tokens
        self._next = 0

    def fields(self, info: ServerInfo) -> dict[str, str]:
        """The next token of the pool."""
        token = self._tokens[self._next]
        self._next = (self._next + 1) % len(self._tokens)
        return {"auth_token": token}


class NkeyCredentials:
    """``nkey`` + ``sig``: ed25519 signature over the INFO nonce with the user's seed."""

    def __init__(self, public_key: str, raw_seed: bytes) -> None:
        """*public_key* is the ``U...`` key; *raw_seed* the 32-byte ed25519 seed behind it."""
        self._public_key = public_key
        self._signer = SigningKey(raw_seed)

    def fields(self, info: ServerInfo) -> dict[str, str]:
        """Sign the nonce; without one the server would never check or forward nkey/sig."""
        if info.nonce is None:
            raise WireError("server sent no nonce; nkey authentication is impossible")
        signature = self._signer.sign(info.nonce.encode()).signature
        # Standard base64 with padding, as nats-py sends it.
        return {"nkey": self._public_key, "sig": base64.b64encode(signature).decode()}


@dataclass(slots=True)
class Window:
    """What happened to the attempts that completed inside the measured window."""

    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    started_at: float = 0.0
    ended_at: float = 0.0
    cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        """Number of accepted connects."""
        return len(self.latencies_ns)

    @property
    def error_count(self) -> int:
        """Number of attempts that did not end in PONG."""
        return sum(self.errors.values())

    @property
    def elapsed_s(self) -> float:
        """Length of the measured window."""
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Where and how hard to connect."""

    host: str
    port: int
    concurrency: int = 64
    warmup_s: float = 2.0
    duration_s: float = 10.0
    count: int | None = None  # stop the window after this many attempts (if sooner)
    attempt_timeout_s: float = 5.0


class _Recorder:
    """Collects outcomes while the window is open and signals when a count is reached."""

    def __init__(self, count: int | None) -> None:
        self.window = Window()
        self.recording = False
        self.done = asyncio.Event()
        self._count = count

    def record(self, latency_ns: int, error: str | None) -> None:
        if not self.recording:
            return
        if error is None:
            self.window.latencies_ns.append(latency_ns)
        else:
            self.window.errors[error] += 1
        if self._count is not None and self.window.ok + self.window.error_count >= self._count:
            self.done.set()


async def connect_once(
    host: str, port: int, credentials: Credentials, timeout_s: float
) -> tuple[int, str | None]:
    """One full connect handshake; returns (latency ns, None) or (latency ns, error reason)."""
    start = time.perf_counter_ns()
    try:
        async with asyncio.timeout(timeout_s):
            error = await _handshake(host, port, credentials)
    except TimeoutError:
        error = "timeout"
    except OSError as exc:
        error = type(exc).__name__
    except WireError as exc:
        error = f"protocol: {exc}"
    return time.perf_counter_ns() - start, error


async def _handshake(host: str, port: int, credentials: Credentials) -> str | None:
    # Raw non-blocking sockets with loop.sock_*: measured ~25% less client CPU per connect
    # than asyncio streams or a Protocol, and client CPU competes with the server on this box.
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        await loop.sock_connect(sock, (host, port))
        lines = _LineReader(loop, sock)
        info = parse_info(await lines.next())
        await loop.sock_sendall(sock, connect_line(credentials.fields(info)))
        while True:
            line = await lines.next()
            reply = classify(line)
            if reply is Reply.ACCEPTED:
                return None
            if reply is Reply.REJECTED:
                return f"-ERR {error_text(line)}"
    finally:
        sock.close()


class _LineReader:
    """CRLF-terminated lines from a non-blocking socket, bounded by MAX_SERVER_LINE."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._sock = sock
        self._buffer = b""

    async def next(self) -> bytes:
        """The next line without its CRLF; EOF or an over-long line is a :class:`WireError`."""
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_SERVER_LINE:
                raise WireError("server line too long")
            chunk = await self._loop.sock_recv(self._sock, 65536)
            if not chunk:
                raise WireError("connection closed by server")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line


async def _worker(spec: LoadSpec, credentials: Credentials, recorder: _Recorder) -> None:
    while True:
        latency_ns, error = await connect_once(
            spec.host, spec.port, credentials, spec.attempt_timeout_s
        )
        recorder.record(latency_ns, error)
        if error is not None and not error.startswith("-ERR"):
            await asyncio.sleep(_ERROR_BACKOFF_S)


async def run_load(
    spec: LoadSpec,
    credentials: Credentials,
    on_window_start: Callable[[], None] = lambda: None,
    on_window_end: Callable[[], None] = lambda: None,
) -> Window:
    """Run warm-up then the measured window; the callbacks bracket the window exactly.

    The callbacks are where the caller samples the CPU counters of the server processes, so
    CPU and connect counts cover the same interval.
    """
    recorder = _Recorder(spec.count)
    workers = [
        asyncio.create_task(_worker(spec, credentials, recorder)) for _ in range(spec.concurrency)
    ]
    try:
        await asyncio.sleep(spec.warmup_s)
        on_window_start()
        recorder.window.started_at = time.perf_counter()
        cpu_start = time.process_time()
        recorder.recording = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), timeout=spec.duration_s)
        recorder.recording = False
        recorder.window.ended_at = time.perf_counter()
        recorder.window.cpu_s = time.process_time() - cpu_start
        on_window_end()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return recorder.window


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty list)."""
    if not sorted_values:
        return 0
    # round() first so 0.9 * 10 is rank 9, not 10 through float error.
    rank = max(1, math.ceil(round(fraction * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
