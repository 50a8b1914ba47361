"""The audit log's share of the service CPU per connect, as bench.connect reports it."""

from __future__ import annotations

import pytest

from bench.audit_share import record_cost, share
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
