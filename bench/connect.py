"""Connect benchmark: connects/s, latency and CPU per connect through four auth paths.

Run from the repository root::

    .venv/bin/python -m bench.connect [--concurrency 64] [--duration 10] [--json]

Scenarios run one after another, each on a fresh nats-server in its own temp dir, so they do
not share caches, connections or CPU. See bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from bench.audit_share import AuditWindow, audit_counters, record_cost, wakeup_cost
from bench.ceiling import measure as measure_checks
from bench.loadgen import LoadSpec, run_load
from bench.procs import HostCpu, cpu_seconds, host_cpu
from bench.report import (
    CpuWindow,
    ScenarioResult,
    render_audit_share,
    render_ceiling,
    render_table,
    summarize,
    to_json_document,
)
from bench.scenarios import SCENARIOS, ScenarioUnavailable, Target, open_target


async def measure(
    name: str,
    round_no: int,
    spec: LoadSpec,
    workdir: Path,
    overrides: Mapping[str, object] | None = None,
) -> ScenarioResult:
    """Set up scenario *name*, drive load through it and summarize the measured window."""
    try:
        async with open_target(name, workdir, overrides) as target:
            spec = dataclasses.replace(spec, port=target.port)
            sampler = _CpuSampler(target)
            window = await run_load(spec, target.credentials, sampler.start, sampler.stop)
            # A process that died mid-window makes the numbers meaningless; say so.
            target.nats.check_alive()
            if target.responder is not None:
                target.responder.check_alive()
            cpu = CpuWindow(
                nats_s=sampler.delta(target.nats.pid),
                responder_s=sampler.delta(target.responder.pid) if target.responder else None,
                loadgen_s=window.cpu_s,
                host=sampler.host,
                audit=sampler.audit,
            )
            return summarize(name, round_no, spec.concurrency, window, cpu, target.notes)
    except ScenarioUnavailable as exc:
        return ScenarioResult(
            scenario=name, concurrency=spec.concurrency, round=round_no, unavailable=str(exc)
        )


class _CpuSampler:
    """Reads /proc CPU counters of the target's processes and the host at window start/end."""

    def __init__(self, target: Target) -> None:
        self._pids = [target.nats.pid] + ([target.responder.pid] if target.responder else [])
        self._start: dict[int, float] = {}
        self._end: dict[int, float] = {}
        self.host = HostCpu(0.0, 0.0, 0.0)
        self._metrics_url = target.metrics_url
        self._audit_start: AuditWindow | None = None
        self.audit: AuditWindow | None = None

    def start(self) -> None:
        self._start = {pid: cpu_seconds(pid) for pid in self._pids}
        self.host = host_cpu()
        self._audit_start = audit_counters(self._metrics_url) if self._metrics_url else None

    def stop(self) -> None:
        self._end = {pid: cpu_seconds(pid) for pid in self._pids}
        self.host = host_cpu() - self.host
        if self._metrics_url and self._audit_start is not None:
            self.audit = audit_counters(self._metrics_url) - self._audit_start

    def delta(self, pid: int) -> float:
        return self._end[pid] - self._start[pid]


def _scenario_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(SCENARIOS)}"
        )
    return names


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError("expected KEY=VALUE, e.g. audit.fsync=false")
    parsed: object = yaml.safe_load(value)  # YAML scalars: false, 10, 0.5, text
    return key.strip(), parsed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.connect",
        description="NATS connect benchmark: token auth vs minimal callout vs authsvc.",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="parallel connects (64)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (2)")
    parser.add_argument("--count", type=int, default=None, help="end the window after N attempts")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the scenario list N times; ratio uses medians"
    )
    parser.add_argument(
        "--scenarios",
        type=_scenario_list,
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (all)",
    )
    parser.add_argument(
        "--authsvc-set",
        action="append",
        default=[],
        type=_override,
        metavar="KEY=VALUE",
        help="override an authsvc setting for the callout scenarios, e.g. audit.fsync=false",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--keep", action="store_true", help="keep temp dirs (configs, logs)")
    return parser


async def _run(args: argparse.Namespace) -> list[ScenarioResult]:
    spec = LoadSpec(
        host="127.0.0.1",
        port=0,
        concurrency=args.concurrency,
        warmup_s=args.warmup,
        duration_s=args.duration,
        count=args.count,
    )
    overrides = dict(args.authsvc_set)
    results = []
    # Round-robin, not all rounds of one scenario back to back, so slow drift on a shared
    # host hits every scenario alike.
    for round_no in range(1, args.rounds + 1):
        for name in args.scenarios:
            results.append(await _measure_in_tempdir(name, round_no, spec, args.keep, overrides))
    return results


async def _measure_in_tempdir(
    name: str, round_no: int, spec: LoadSpec, keep: bool, overrides: Mapping[str, object]
) -> ScenarioResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"authsvc-bench-{name}-"))
    print(f"running {name} (round {round_no}) ...", file=sys.stderr, flush=True)
    try:
        return await measure(name, round_no, spec, workdir, overrides)
    finally:
        if keep:
            print(f"  kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any scenario failed to run or saw errors."""
    args = _parser().parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        _parser().error("need --concurrency >= 1, --duration > 0, --warmup >= 0, --rounds >= 1")
    results = asyncio.run(_run(args))
    costs = measure_checks()  # after the scenarios, so it never competes with them for CPU
    record_us = record_cost()
    wakeup_us = wakeup_cost()
    if args.json:
        document = to_json_document(results, args.concurrency, costs)
        document["audit_record_us"] = record_us
        document["audit_wakeup_us"] = wakeup_us
        document["authsvc_overrides"] = dict(args.authsvc_set)
        print(json.dumps(document, indent=2))
    else:
        print(f"# {os.cpu_count()} CPUs; {args.concurrency} concurrent; {args.duration:g}s window")
        for key, value in args.authsvc_set:
            print(f"# authsvc setting {key} = {value!r}")
        print(render_table(results, args.concurrency))
        print(render_ceiling(results, costs))
        print(render_audit_share(results, record_us, wakeup_us))
    failed = any(r.unavailable is not None or r.error_count for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
