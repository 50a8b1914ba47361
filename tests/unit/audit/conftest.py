"""A real AuditLog on a temporary directory with a stepping clock and a checkpoint key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authsvc.audit import AuditLog, FileSink, Rotation
from authsvc.protocol.nkeys import KeyPair, Prefix

START = datetime(2026, 3, 1, tzinfo=UTC)


class StepClock:
    """Advances one second per reading: records get distinct, increasing times."""

    def __init__(self, start: datetime = START) -> None:
        self.at = start

    def now(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@pytest.fixture
def signer() -> KeyPair:
    return KeyPair.create(Prefix.USER)


MakeLog = Callable[..., AuditLog]


@pytest.fixture
def make_log(tmp_path: Path, signer: KeyPair) -> MakeLog:
    def make(*, rotation: Rotation | None = None, clock: StepClock | None = None,
             path: Path | None = None) -> AuditLog:
        return AuditLog(FileSink(path or tmp_path / "audit.jsonl", fsync=False),
                        instance="test", clock=clock or StepClock(), signer=signer,
                        checkpoint_every=0, rotation=rotation)
    return make


def decision(n: int, outcome: str = "allow") -> dict[str, object]:
    return {"type": "decision", "decision": outcome, "reason": "allowed", "n": n}
