"""bench.policy_reload: the figures it reports come from real loads, lints and reloads."""

from __future__ import annotations

import pytest

from bench.policy_reload import _lag, measure


def test_lag_reports_max_and_p99_in_ms() -> None:
    lags = [0.001] * 99 + [0.010]
    lag = _lag(lags, [0.0005] * 100, [0.0002] * 100)
    assert (lag.probes, lag.lag_max, lag.lag_p99) == (100, pytest.approx(10.0),
                                                     pytest.approx(10.0))
    assert (lag.held_max, lag.decide_max) == (pytest.approx(0.5), pytest.approx(0.2))


def test_a_small_policy_is_loaded_linted_and_reloaded() -> None:
    result = measure(10, repeat=1, reloads=1, tail=0.05)
    assert result.rules == 10
    assert result.load.wall > 0 and result.reload_seconds > 0
    assert result.idle.probes > 0 and result.reload.probes > 0
