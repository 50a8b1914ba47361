"""The audit log's share of the service CPU per connect, as bench.connect reports it."""

from __future__ import annotations

import pytest

from bench.audit_share import AuditWindow, in_service, record_cost, share, wakeup_cost
from bench.report import ScenarioResult, render_audit_share
from bench.scenarios import SCENARIOS


def test_share_adds_durability_to_the_record_cost() -> None:
    # 900 µs per connect with fsync, 850 without: 50 µs of durability + 40 of record = 10%.
    assert share(40.0, 900.0, 850.0) == pytest.approx(0.10)


def test_share_without_a_nofsync_run_counts_the_record_only() -> None:
    assert share(45.0, 900.0, None) == pytest.approx(0.05)


def test_noise_never_makes_durability_negative() -> None:
    assert share(30.0, 800.0, 820.0) == pytest.approx(30.0 / 800.0)


def test_record_cost_times_real_records() -> None:
    assert record_cost(records=50) > 0.0


def test_nofsync_scenario_is_offered() -> None:
    assert "authsvc-nofsync" in SCENARIOS


def test_in_service_durability_is_the_fsync_thread_plus_a_wakeup_per_commit() -> None:
    # 1,000 connects, 100 group commits, 20 ms of fsync-thread CPU, 60 µs per wake-up:
    # (20,000 + 100 * 60) / 1,000 = 26 µs per connect.
    window = AuditWindow(records=1000, fsyncs=100, fsync_cpu_s=0.020)
    assert in_service(window, 1000, 60.0) == pytest.approx(26.0)
    assert in_service(AuditWindow(), 1000, 60.0) is None  # fsync off: nothing measured


def test_counters_over_a_window_are_differences() -> None:
    later, earlier = AuditWindow(150, 20, 0.5), AuditWindow(100, 15, 0.25)
    assert later - earlier == AuditWindow(50, 5, 0.25)


def test_wakeup_cost_times_a_real_fsync_round_trip() -> None:
    assert wakeup_cost(rounds=50) >= 0.0


def test_the_report_shows_the_in_service_share() -> None:
    run = ScenarioResult(scenario="authsvc", concurrency=64, ok=1000,
                         responder_cpu_us_per_conn=1000.0,
                         audit=AuditWindow(records=1000.0, fsyncs=100.0, fsync_cpu_s=0.020))
    text = render_audit_share([run], record_us=40.0, wakeup_us=60.0)
    # (40 + 20 + 100 * 60 / 1000) / 1000 = 6.6%
    assert "10.0 records per fsync" in text and "= 7% of authsvc's CPU" in text
