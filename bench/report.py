"""Turn measured windows into per-scenario results, a text table and JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from bench.audit_share import TARGET_SHARE, AuditWindow, in_service
from bench.audit_share import render as render_share
from bench.ceiling import CheckCosts, ceiling_ratio, render
from bench.loadgen import Window, percentile
from bench.procs import HostCpu

TARGET_RATIO = 0.90
#: Above this share of the host's CPU used by processes outside the benchmark, warn: the
#: scenarios were not measured under the same conditions.
NOISY_HOST_PCT = 10.0


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds each process spent during the measured window (None: no such process)."""

    nats_s: float
    responder_s: float | None
    loadgen_s: float
    host: HostCpu  # whole host over the same window
    audit: AuditWindow | None = None  # authsvc's audit counters over the window


@dataclass(frozen=True)
class ScenarioResult:
    """One row of the table; ``unavailable`` set means the scenario did not run."""

    scenario: str
    concurrency: int
    round: int = 1
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0
    connects_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    responder_cpu_us_per_conn: float | None = None
    nats_cpu_us_per_conn: float | None = None
    loadgen_cpu_us_per_conn: float | None = None
    responder_core_pct: float | None = None  # of one core: ~100 = single-thread bottleneck
    nats_core_pct: float | None = None  # of one core (nats-server is multi-threaded)
    host_busy_pct: float | None = None  # of all CPUs, during the window
    irq_cpu_pct: float | None = None  # of all CPUs, interrupts (mostly loopback TCP)
    outside_cpu_pct: float | None = None  # of all CPUs, by processes not under test
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None
    audit: AuditWindow | None = None  # authsvc's audit counters over the window

    @property
    def error_count(self) -> int:
        """Attempts that did not end in PONG."""
        return sum(self.errors.values())


def summarize(
    scenario: str, round_no: int, concurrency: int, window: Window, cpu: CpuWindow,
    notes: list[str],
) -> ScenarioResult:  # fmt: skip
    """Compute rates, latency percentiles (accepted connects only) and CPU per connect."""
    latencies = sorted(window.latencies_ns)

    def ms(fraction: float) -> float:
        return percentile(latencies, fraction) / 1e6

    def per_conn(seconds: float | None) -> float | None:
        if seconds is None or window.ok == 0:
            return None
        return seconds / window.ok * 1e6

    elapsed = window.elapsed_s
    span = elapsed if elapsed > 0 else 1.0
    ours = cpu.nats_s + (cpu.responder_s or 0.0) + cpu.loadgen_s
    capacity = cpu.host.total_s or 1.0
    return ScenarioResult(
        scenario=scenario,
        concurrency=concurrency,
        round=round_no,
        ok=window.ok,
        errors=dict(window.errors.most_common()),
        window_s=elapsed,
        connects_per_s=window.ok / elapsed if elapsed > 0 else 0.0,
        p50_ms=ms(0.50),
        p90_ms=ms(0.90),
        p99_ms=ms(0.99),
        max_ms=latencies[-1] / 1e6 if latencies else 0.0,
        responder_cpu_us_per_conn=per_conn(cpu.responder_s),
        nats_cpu_us_per_conn=per_conn(cpu.nats_s),
        loadgen_cpu_us_per_conn=per_conn(cpu.loadgen_s),
        responder_core_pct=None if cpu.responder_s is None else 100 * cpu.responder_s / span,
        nats_core_pct=100 * cpu.nats_s / span,
        host_busy_pct=100 * cpu.host.busy_s / capacity,
        irq_cpu_pct=100 * cpu.host.irq_s / capacity,
        # Other builds and tests on the same host skew every number; show how much.
        outside_cpu_pct=max(0.0, 100 * (cpu.host.busy_s - cpu.host.irq_s - ours) / capacity),
        notes=notes,
        audit=cpu.audit,
    )


def median_rate(results: list[ScenarioResult], scenario: str) -> float | None:
    """Median connects/s of the rounds of *scenario* that ran (None if none did)."""
    rates = [r.connects_per_s for r in results if r.scenario == scenario and not r.unavailable]
    return statistics.median(rates) if rates else None


def median_service_cpu(results: list[ScenarioResult], scenario: str) -> float | None:
    """Median responder CPU µs per accepted connect over the rounds of *scenario*."""
    values = [
        r.responder_cpu_us_per_conn
        for r in results
        if r.scenario == scenario and r.responder_cpu_us_per_conn is not None
    ]
    return statistics.median(values) if values else None


def median_total_cpu(results: list[ScenarioResult], scenario: str) -> float | None:
    """Median CPU µs per accepted connect of responder + nats-server + load generator."""
    values = [
        r.responder_cpu_us_per_conn + r.nats_cpu_us_per_conn + r.loadgen_cpu_us_per_conn
        for r in results
        if r.scenario == scenario
        and r.responder_cpu_us_per_conn is not None
        and r.nats_cpu_us_per_conn is not None
        and r.loadgen_cpu_us_per_conn is not None
    ]
    return statistics.median(values) if values else None


def cpu_cost_ratio(results: list[ScenarioResult], scenario: str = "authsvc") -> float | None:
    """minimal ÷ *scenario* total CPU per connect: the conn/s ratio a quiet, CPU-bound host
    converges to. Other processes stealing cores barely move it, unlike conn/s."""
    authsvc, minimal = median_total_cpu(results, scenario), median_total_cpu(results, "minimal")
    if authsvc is None or minimal is None or authsvc == 0:
        return None
    return minimal / authsvc


def ratio(results: list[ScenarioResult], scenario: str = "authsvc") -> float | None:
    """Median *scenario* connects/s ÷ median minimal connects/s, when both ran."""
    authsvc, minimal = median_rate(results, scenario), median_rate(results, "minimal")
    if authsvc is None or not minimal:
        return None
    return authsvc / minimal


_COLUMNS = (
    ("scenario", 12), ("conn/s", 8), ("p50 ms", 7), ("p90 ms", 7), ("p99 ms", 7), ("max ms", 7),
    ("ok", 7), ("errors", 6), ("svc µs/conn", 11), ("nats µs/conn", 12), ("gen µs/conn", 11),
)  # fmt: skip


def _cell(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def render_table(results: list[ScenarioResult], concurrency: int) -> str:
    """The human-readable report: table, errors by reason, notes and the ratio line."""
    header = "  ".join(f"{name:>{width}}" for name, width in _COLUMNS)
    lines = [header, "-" * len(header)]
    several = any(r.round > 1 for r in results)
    for r in results:
        label = f"{r.scenario}#{r.round}" if several else r.scenario
        if r.unavailable is not None:
            lines.append(f"{label:>12}  not run: {r.unavailable}")
            continue
        cells = [
            f"{label:>12}", _cell(r.connects_per_s, 8, 0), _cell(r.p50_ms, 7, 2),
            _cell(r.p90_ms, 7, 2), _cell(r.p99_ms, 7, 2), _cell(r.max_ms, 7, 1),
            f"{r.ok:>7}", f"{r.error_count:>6}", _cell(r.responder_cpu_us_per_conn, 11, 0),
            _cell(r.nats_cpu_us_per_conn, 12, 0), _cell(r.loadgen_cpu_us_per_conn, 11, 0),
        ]  # fmt: skip
        lines.append("  ".join(cells))
    for r in results:
        label = f"{r.scenario}#{r.round}" if several else r.scenario
        for reason, count in r.errors.items():
            lines.append(f"errors[{label}]: {count} x {reason}")
        if r.unavailable is None:
            responder = (
                "" if r.responder_core_pct is None else f"responder {r.responder_core_pct:.0f}%, "
            )
            lines.append(
                f"cpu[{label}]: {responder}nats-server {r.nats_core_pct:.0f}% of a core; "
                f"host {r.host_busy_pct:.0f}% busy, {r.irq_cpu_pct:.0f}% in interrupts, "
                f"{r.outside_cpu_pct:.0f}% by processes outside the benchmark"
            )
        if r.round == 1:
            lines.extend(f"note[{r.scenario}]: {note}" for note in r.notes)
    noisy = [r for r in results if (r.outside_cpu_pct or 0.0) > NOISY_HOST_PCT]
    if noisy:
        worst = max(r.outside_cpu_pct or 0.0 for r in noisy)
        lines.append(
            f"WARNING: other processes used up to {worst:.0f}% of the host CPU during "
            f"{len(noisy)} window(s); rerun on a quiet host before trusting the comparison"
        )
    value = ratio(results)
    shown = "n/a (needs both authsvc and minimal)" if value is None else f"{value:.2f}"
    if value is not None and several:
        shown += " (medians over rounds)"
    lines.append(
        f"authsvc / minimal at {concurrency} concurrent: {shown} (target >= {TARGET_RATIO:.2f})"
    )
    oidc = ratio(results, "authsvc-oidc")
    if oidc is not None:
        lines.append(f"authsvc-oidc / minimal at {concurrency} concurrent: {oidc:.2f} "
                     f"(target >= {TARGET_RATIO:.2f})")
    minimal_cpu = median_service_cpu(results, "minimal")
    for name in ("authsvc", "authsvc-oidc"):
        authsvc_cpu = median_service_cpu(results, name)
        if authsvc_cpu is not None and minimal_cpu:
            lines.append(
                f"service CPU per connect: {name} {authsvc_cpu:.0f} µs, minimal "
                f"{minimal_cpu:.0f} µs ({authsvc_cpu / minimal_cpu:.2f}x)"
            )
    for name in ("authsvc", "authsvc-oidc"):
        by_cost = cpu_cost_ratio(results, name)
        if by_cost is not None:
            lines.append(
                f"{name} / minimal by total CPU per connect (quiet-host estimate): {by_cost:.2f}"
            )
    return "\n".join(lines)


def render_audit_share(results: list[ScenarioResult], record_us: float,
                       wakeup_us: float | None = None) -> str:
    """The audit log's share of authsvc's CPU per connect (bench.audit_share): across
    scenarios, and, with ``wakeup_us``, from the service's own counters."""
    line = render_share(record_us, median_service_cpu(results, "authsvc"),
                        median_service_cpu(results, "authsvc-nofsync"))
    if wakeup_us is None:
        return line
    shares, durability, group = [], [], []
    for r in results:
        if r.scenario != "authsvc" or r.audit is None or not r.responder_cpu_us_per_conn:
            continue
        spent = in_service(r.audit, r.ok, wakeup_us)
        if spent is None:
            continue
        durability.append(spent)
        shares.append((record_us + spent) / r.responder_cpu_us_per_conn)
        group.append(r.audit.records / r.audit.fsyncs)
    if not shares:
        return line
    return line + (
        f"\naudit in the service (its /metrics over each window, median of rounds): "
        f"{statistics.median(group):.1f} records per fsync; durability "
        f"{statistics.median(durability):.0f} µs per connect (fsync thread + {wakeup_us:.0f} µs "
        f"event-loop hand-off per fsync); audit log = {statistics.median(shares):.0%} of "
        f"authsvc's CPU per connect (target <= {TARGET_SHARE:.0%})")


def render_ceiling(results: list[ScenarioResult], costs: CheckCosts) -> str:
    """What the mandatory signature checks alone leave of the target (bench.ceiling)."""
    totals = {name: total for name in ("authsvc", "authsvc-oidc")
              if (total := median_total_cpu(results, name)) is not None}
    return "\n".join(render(costs, median_total_cpu(results, "minimal"), totals, TARGET_RATIO))


def to_json_document(results: list[ScenarioResult], concurrency: int,
                     costs: CheckCosts | None = None) -> dict[str, object]:
    """Machine-readable form of the same report."""
    minimal = median_total_cpu(results, "minimal")
    ceilings = {} if costs is None or minimal is None else {
        name: ceiling_ratio(minimal, costs.mandatory_us(name))
        for name in ("authsvc", "authsvc-oidc")}
    return {
        "signature_check_us": None if costs is None else asdict(costs),
        "ceiling_over_minimal": ceilings,
        "concurrency": concurrency,
        "runs": [asdict(r) for r in results],
        "authsvc_over_minimal": ratio(results),
        "authsvc_oidc_over_minimal": ratio(results, "authsvc-oidc"),
        "authsvc_over_minimal_by_cpu_cost": cpu_cost_ratio(results),
        "authsvc_oidc_over_minimal_by_cpu_cost": cpu_cost_ratio(results, "authsvc-oidc"),
        "service_cpu_us_per_conn": {
            name: median_service_cpu(results, name)
            for name in ("minimal", "authsvc", "authsvc-oidc", "authsvc-nofsync")
        },
        "target_ratio": TARGET_RATIO,
    }
