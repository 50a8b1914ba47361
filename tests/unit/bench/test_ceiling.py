"""The ceiling the mandatory signature checks put on the connect benchmark's ratio."""

from __future__ import annotations

import pytest

from bench.ceiling import CheckCosts, budget_us, ceiling_ratio, measure


def test_nkey_scenario_pays_two_ed25519_checks_oidc_one_and_an_rs256() -> None:
    costs = CheckCosts(ed25519_us=60.0, rs256_us=25.0)
    assert costs.mandatory_us("authsvc") == 120.0
    assert costs.mandatory_us("authsvc-oidc") == 85.0


def test_ceiling_adds_the_checks_to_minimal() -> None:
    assert ceiling_ratio(1000.0, 100.0) == pytest.approx(1000.0 / 1100.0)


def test_budget_is_what_the_target_leaves_after_the_checks() -> None:
    # 900 / 0.9 = 1000 µs allowed in total: 100 more than minimal, 50 of them for checks.
    assert budget_us(900.0, 50.0, 0.9) == pytest.approx(50.0)
    assert budget_us(900.0, 150.0, 0.9) == pytest.approx(-50.0)


def test_measure_times_real_checks() -> None:
    costs = measure(count=20)
    assert costs.ed25519_us > 0.0
    assert costs.rs256_us > 0.0
