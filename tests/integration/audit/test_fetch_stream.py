"""Reading a real audit stream back: a forged copy of a record is kept next to the genuine one.

Records go into a real nats-server's JetStream the way the sink publishes them (subject
``authsvc.audit.<instance>``, ``Nats-Msg-Id`` = event id), and are read back with the
direct gets ``authsvc audit fetch`` uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from authsvc.audit import AuditLog, FileSink, verify
from authsvc.audit.chain import canonical
from authsvc.audit.stream import StreamSpec, ensure_stream, subject_for
from tests.integration.audit.jetstream_support import JetStreamServer, StepClock


@pytest.fixture
def js(tmp_path: Path) -> Iterator[JetStreamServer]:
    server = JetStreamServer(tmp_path / "nats").start()
    yield server
    server.stop()


def _genuine(path: Path, count: int) -> list[bytes]:
    log = AuditLog(FileSink(path, fsync=False), instance="test", clock=StepClock())
    for n in range(count):
        log.append({"type": "decision", "decision": "allow", "reason": "allowed", "n": n})
    log.close()
    return path.read_bytes().splitlines()


async def _publish(js: JetStreamServer, lines: list[bytes], *, id_suffix: str = "") -> None:
    conn = await nats.connect(js.url)
    try:
        await ensure_stream(conn, StreamSpec(), create=True)
        stream = conn.jetstream()
        for line in lines:
            msg_id = json.loads(line)["event_id"] + id_suffix
            await stream.publish(subject_for("test"), line, headers={"Nats-Msg-Id": msg_id})
    finally:
        await conn.close()


@pytest.mark.parametrize("forgery_first", [False, True],
                         ids=["forgery-after-genuine", "forgery-before-genuine"])
async def test_a_changed_record_under_the_old_hash_is_kept_and_verify_flags_it(
        tmp_path: Path, js: JetStreamServer, forgery_first: bool) -> None:
    genuine = _genuine(tmp_path / "local" / "audit.jsonl", 5)
    record = json.loads(genuine[2])
    record["decision"] = "deny"  # the claimed record_hash and seq stay those of seq 3
    record["event_id"] += "-forged"  # a new message id, or the stream itself drops it
    forged = canonical(record)
    # "before": as if the genuine record had been spooled and replayed after the forgery
    await _publish(js, [forged, *genuine] if forgery_first else [*genuine, forged])
    # An exact copy the stream stored again (as past its duplicate window): dropped by fetch.
    await _publish(js, genuine[:1], id_suffix="-replayed")
    found = await js.fetch_to(tmp_path / "stream")
    chain = found.chains["test"]
    assert chain.duplicates == 1 and len(chain.lines) == 6
    stored = (tmp_path / "stream" / "test" / "audit.jsonl").read_bytes().splitlines()
    assert genuine[2] in stored and forged in stored
    report = verify([tmp_path / "stream" / "test"])
    assert {"altered", "seq_order"} <= {b.kind for b in report.breaks}
