"""Child processes of the benchmark: nats-server and the responders, plus their CPU counters.

Everything binds to loopback on ports picked by the kernel and lives in a temp dir owned by the
caller. Processes are stopped by pid (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Repository root; responders run with it as cwd so ``python -m bench...`` resolves.
REPO_ROOT = Path(__file__).resolve().parent.parent

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class HostCpu:
    """Host-wide CPU seconds summed over CPUs, from the first line of /proc/stat."""

    busy_s: float  # everything but idle and iowait (guest is already inside user)
    total_s: float
    irq_s: float  # hard + soft interrupts: loopback TCP work not charged to any process

    def __sub__(self, earlier: HostCpu) -> HostCpu:
        return HostCpu(
            self.busy_s - earlier.busy_s, self.total_s - earlier.total_s, self.irq_s - earlier.irq_s
        )


def host_cpu() -> HostCpu:
    """Current host-wide CPU counters (proc(5): user nice system idle iowait irq softirq steal)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]
    total = sum(ticks)
    return HostCpu(
        busy_s=(total - ticks[3] - ticks[4]) / _CLOCK_TICKS,
        total_s=total / _CLOCK_TICKS,
        irq_s=(ticks[5] + ticks[6]) / _CLOCK_TICKS,
    )


class ProcessError(RuntimeError):
    """A child process failed to start, exited early, or never became ready."""


def venv_tool(name: str) -> str:
    """Path of a console script next to the running interpreter (the project venv), or PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ProcessError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of *pid* (all threads) from /proc/<pid>/stat, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # comm (field 2) may contain spaces; fields after the closing paren are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


class Child:
    """A started child process with its stdout/stderr captured to files for diagnosis."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path) -> None:
        """Start *argv*; output goes to ``log_dir/<name>.log``."""
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
        except OSError as exc:
            self._log.close()
            raise ProcessError(f"cannot start {name}: {exc}") from exc

    @property
    def pid(self) -> int:
        """Process id."""
        return self.popen.pid

    def check_alive(self) -> None:
        """Raise :class:`ProcessError` with the log tail if the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise ProcessError(f"{self.name} exited with {code}: {self.log_tail()}")

    def log_tail(self, lines: int = 8) -> str:
        """Last lines of the captured output, for error messages."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, wait up to *grace_s*, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def run_tool(argv: Sequence[str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a short-lived command from the repo root; raise :class:`ProcessError` on failure."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProcessError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ProcessError(f"{' '.join(argv)} exited {done.returncode}: {' | '.join(tail)}")
    return done


def start_nats_server(config: Path, port: int, log_dir: Path, timeout_s: float = 10.0) -> Child:
    """Start nats-server with *config* and wait until it greets on *port*."""
    server = Child("nats-server", [venv_tool("nats-server"), "-c", str(config)], log_dir)
    deadline = time.monotonic() + timeout_s
    while True:
        server.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                if sock.recv(4).startswith(b"INFO"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise ProcessError(f"nats-server not ready on port {port}: {server.log_tail()}")
        time.sleep(0.05)
