"""/healthz: why the service cannot answer authorization requests now."""

from __future__ import annotations

from authsvc.metrics import Heartbeat, health_problems


def test_health_names_a_stalled_event_loop_and_a_lost_connection() -> None:
    beat = Heartbeat(interval=1.0)
    assert health_problems(beat, lambda: True) == []
    beat._beat -= 10  # no stamp for 10 s: the loop did not run
    problems = health_problems(beat, lambda: False)
    assert len(problems) == 2 and problems[1] == "not connected to nats-server"
    assert len(health_problems(beat, None)) == 1  # liveness: the loop only
