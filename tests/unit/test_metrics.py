"""/healthz: why the service cannot answer authorization requests now."""

from __future__ import annotations

import pytest

from authsvc.commands.health import health_url
from authsvc.errors import ConfigError
from authsvc.metrics import Heartbeat, health_problems


def test_health_names_a_stalled_event_loop_and_a_lost_connection() -> None:
    beat = Heartbeat(interval=1.0)
    assert health_problems(beat, lambda: True) == []
    beat._beat -= 10  # no stamp for 10 s: the loop did not run
    problems = health_problems(beat, lambda: False)
    assert len(problems) == 2 and problems[1] == "not connected to nats-server"
    assert len(health_problems(beat, None)) == 1  # liveness: the loop only


@pytest.mark.parametrize(("listen", "live", "url"), [
    ("127.0.0.1:9464", False, "http://127.0.0.1:9464/healthz"),
    ("0.0.0.0:9464", True, "http://127.0.0.1:9464/livez"),
    (":9464", False, "http://127.0.0.1:9464/healthz"),
    ("[::]:9464", False, "http://[::1]:9464/healthz"),
    ("authsvc.internal:9000", False, "http://authsvc.internal:9000/healthz"),
])
def test_health_command_asks_the_metrics_listener(listen: str, live: bool, url: str) -> None:
    assert health_url(listen, live) == url


def test_health_command_refuses_without_a_listener() -> None:
    with pytest.raises(ConfigError):
        health_url("", False)


def test_latency_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    from authsvc.transport import LatencyHistogram

    hist = LatencyHistogram((0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.002, 0.1, 3.0):
        hist.observe(seconds)
    assert hist.buckets() == [("0.001", 2), ("0.01", 3), ("0.1", 4), ("+Inf", 5)]
    assert hist.count == 5 and hist.sum == pytest.approx(3.1035)
    with pytest.raises(ValueError):
        LatencyHistogram((0.1, 0.01))
