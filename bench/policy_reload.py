"""Policy load, lint, and the event loop during a hot reload: ``python -m bench.policy_reload``.

For policies of 10, 1k and 10k generated rules (``bench.policy_eval``'s fleet, split over
files of 1,000 rules as ``MAX_FILE_BYTES`` requires) it times ``load_policy`` and ``lint``
(best of ``--repeat`` runs, wall and CPU), then runs the service's ``PolicyReloader`` on the
same event loop as a steady stream of decisions: every millisecond a probe sleeps 1 ms, notes
how late it woke (the loop's lag: how long something else held it) and calls ``evaluate``.
Each of ``--reloads`` reloads is a real change (a new revision to activate); the window runs
from the reload's start until ``--tail`` seconds after it returned, so that freeing the
replaced policy and later garbage collections are in it. Before the reloads the probe runs
for as long on an idle loop, which is the floor on this host.

Only public names of ``authsvc`` are used, so the same file measures older revisions too
(``PYTHONPATH=<their tree> python bench/policy_reload.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from authsvc.audit import AuditLog, FileSink
from authsvc.clock import SystemClock
from authsvc.domain import Identity
from authsvc.policy import Policy, evaluate, load_policy
from authsvc.policy.lint import lint
from authsvc.policy_reload import PolicyReloader, ReloadSources, Trigger
from authsvc.server import PolicyHolder
from bench.policy_eval import NOW, RULES_PER_FILE, policy_yaml, probe_identities, request, rules

SIZES = (10, 1_000, 10_000)
PROBE_EVERY = 0.001
TARGET_MS = 5.0  # "a few milliseconds": the most a reload may hold the loop


@dataclass(frozen=True)
class Timed:
    """Best of the repeats, in seconds."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Lag:
    """What the probe saw, in ms: how late it woke (``lag``); how much of that the loop's
    thread spent running other work (``held``: the lag, but at most the thread's CPU time
    while the probe slept; what this process itself kept the loop from, as opposed to the
    host running something else); and how long one decision took."""

    probes: int
    lag_max: float
    lag_p99: float
    held_max: float
    held_p99: float
    decide_max: float
    decide_p99: float


@dataclass(frozen=True)
class SizeResult:
    rules: int
    load: Timed
    lint: Timed
    warnings: int
    reload_seconds: float
    idle: Lag
    reload: Lag


def _best(action: Callable[[], object], repeat: int) -> tuple[Timed, object]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timed(min(walls), min(cpus)), result


def _render(rule_list: list[dict[str, Any]]) -> dict[str, bytes]:
    return {f"{first // RULES_PER_FILE:03d}.yaml":
            policy_yaml(rule_list[first:first + RULES_PER_FILE]).encode()
            for first in range(0, len(rule_list), RULES_PER_FILE)}


def _write(directory: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (directory / name).write_bytes(data)


def _lag(lags: list[float], held: list[float], decisions: list[float]) -> Lag:
    def p99(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.99)] * 1e3

    return Lag(len(lags), max(lags) * 1e3, p99(lags), max(held) * 1e3, p99(held),
               max(decisions) * 1e3, p99(decisions))


class Probe:
    """Sleeps PROBE_EVERY, records how late it woke, decides once; until stopped."""

    def __init__(self, holder: PolicyHolder, identity: Identity) -> None:
        self.holder, self.identity = holder, identity
        self.lags: list[float] = []
        self.held: list[float] = []
        self.decisions: list[float] = []
        self.running = True
        self.counting = True

    async def run(self) -> None:
        req = request()
        while self.running:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(PROBE_EVERY)
            woke, busy = time.perf_counter(), time.thread_time() - cpu
            evaluate(self.identity, req, self.holder.current, NOW)
            if self.counting:
                late = woke - started - PROBE_EVERY
                self.lags.append(late)
                self.held.append(min(late, busy))
                self.decisions.append(time.perf_counter() - woke)

    def take(self) -> Lag:
        lag = _lag(self.lags, self.held, self.decisions)
        self.lags, self.held, self.decisions = [], [], []
        return lag


async def measure_reloads(directory: Path, rule_list: list[dict[str, Any]], reloads: int,
                          tail: float) -> tuple[float, Lag, Lag]:
    """Mean seconds per reload, the idle floor, and the probe over all reload windows."""
    holder = PolicyHolder(load_policy([directory]))
    audit = AuditLog(FileSink(directory.parent / "audit.jsonl", fsync=False),
                     instance="bench", clock=SystemClock())
    reloader = PolicyReloader(holder, ReloadSources(paths=(directory,)), audit=audit,
                              check_accounts=lambda policy: None, interval=0)
    reloader.start()  # as serve() does
    probe = Probe(holder, probe_identities(rule_list)[0])
    running = asyncio.get_running_loop().create_task(probe.run())
    seconds: list[float] = []
    changes = []
    for number in range(reloads):  # rendered ahead: YAML dumping would hold the loop
        rule_list[0]["grant"]["ttl"] = f"{10 + number}m"  # a new revision every time
        changes.append(_render(rule_list))
    try:
        await asyncio.sleep(tail)
        probe.take()  # start() and its warm-up are not what is measured here
        await asyncio.sleep(tail * reloads)
        idle = probe.take()
        for files in changes:
            probe.counting = False
            await asyncio.to_thread(_write, directory, files)
            probe.counting = True
            started = time.perf_counter()
            result = await reloader.reload(Trigger.SIGNAL)
            seconds.append(time.perf_counter() - started)
            assert isinstance(result, Policy), result
            await asyncio.sleep(tail)
        during = probe.take()
    finally:
        probe.running = False
        await running
        await reloader.aclose()
        audit.close()
    return sum(seconds) / len(seconds), idle, during


def measure(count: int, repeat: int, reloads: int, tail: float) -> SizeResult:
    rule_list = rules(count)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "policies"
        directory.mkdir()
        _write(directory, _render(rule_list))
        loaded, policy = _best(lambda: load_policy([directory]), repeat)
        assert isinstance(policy, Policy)
        linted, warnings = _best(lambda p=policy: lint(p), repeat)
        assert isinstance(warnings, list)
        policy = None  # not kept alive through the reload measurement
        reload_seconds, idle, during = asyncio.run(
            measure_reloads(directory, rule_list, reloads, tail))
    return SizeResult(count, loaded, linted, len(warnings), reload_seconds, idle, during)


def _print(results: list[SizeResult]) -> None:
    print(f"{'rules':>7} {'load s':>7} {'cpu s':>6} {'lint s':>7} {'warns':>7} "
          f"{'reload s':>8} | {'probes':>6} {'lag max':>8} {'lag p99':>8} {'held max':>8} "
          f"{'held p99':>8} {'dec max':>8} {'dec p99':>8}  (ms)")
    for r in results:
        head = (f"{r.rules:>7} {r.load.wall:7.2f} {r.load.cpu:6.2f} {r.lint.wall:7.2f} "
                f"{r.warnings:>7} {r.reload_seconds:8.2f}")
        for name, lag in (("idle", r.idle), ("reload", r.reload)):
            print(f"{head if name == 'idle' else '':>{len(head)}} | {lag.probes:>6} "
                  f"{lag.lag_max:8.2f} {lag.lag_p99:8.2f} {lag.held_max:8.2f} "
                  f"{lag.held_p99:8.2f} {lag.decide_max:8.3f} {lag.decide_p99:8.3f}  {name}")
    for what, worst in (("lag", max(r.reload.lag_max for r in results)),
                        ("held", max(r.reload.held_max for r in results))):
        verdict = "ok" if worst <= TARGET_MS else "OVER TARGET"
        print(f"worst loop {what} during reloads: {worst:.2f} ms (target <= {TARGET_MS:g} ms) "
              f"{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated rule counts")
    parser.add_argument("--repeat", type=int, default=3, help="load and lint runs per size")
    parser.add_argument("--reloads", type=int, default=3, help="reloads per size")
    parser.add_argument("--tail", type=float, default=1.0,
                        help="seconds measured after each reload returns")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(int(size), args.repeat, args.reloads, args.tail)
               for size in args.sizes.split(",")]
    _print(results)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
