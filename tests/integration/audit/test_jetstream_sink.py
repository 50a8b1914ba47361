"""The JetStream sink against a real nats-server with JetStream: ack, spool, drain, bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from authsvc.audit import Rotation, verify
from authsvc.audit.jetstream import SinkState
from authsvc.audit.stream import STREAM, StreamSpec, api, ensure_stream
from authsvc.errors import AuditError
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.integration.audit.jetstream_support import (
    JetStreamServer,
    make_log,
    sink_of,
    wait_live,
    write_records,
)


@pytest.fixture
def js(tmp_path: Path) -> Iterator[JetStreamServer]:
    server = JetStreamServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def signer() -> KeyPair:
    return KeyPair.create(Prefix.USER)


def _verified(folder: Path, signer: KeyPair) -> int:
    report = verify([folder], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok, report.first_break
    return report.records


async def test_commit_returns_only_after_the_stream_stored_the_record(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    log = make_log(tmp_path / "audit.jsonl", js, signer)
    for n in range(10):
        log.append({"type": "decision", "decision": "allow", "n": n})
        await log.commit()
        # Acknowledged means stored: the record is readable the moment commit returns.
        found = await js.records()
        assert len(found.chains["test"].lines) == n + 1
    assert sink_of(log).state is SinkState.LIVE
    await log.aclose()
    found = await js.fetch_to(tmp_path / "stream")
    assert _verified(tmp_path / "stream" / "test", signer) == 12  # + stop, checkpoint
    assert found.chains["test"].duplicates == 0
    conn = await nats.connect(js.url)
    check = await ensure_stream(conn, StreamSpec(), create=False)
    await conn.close()
    assert check.weaknesses == []
    assert check.config["deny_delete"] and check.config["deny_purge"]


async def test_outage_is_spooled_then_drained_in_order_without_duplicates(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    log = make_log(tmp_path / "audit.jsonl", js, signer)
    await write_records(log, 20)
    js.stop()
    await write_records(log, 20, start=20)  # the first waits ack_timeout, then spooling
    sink = sink_of(log)
    assert sink.state is SinkState.SPOOLING
    js.start()
    await wait_live(log)
    await write_records(log, 5, start=40)
    await log.aclose()
    found = await js.fetch_to(tmp_path / "stream")
    chain = found.chains["test"]
    seqs = sorted(seq for seq, _ in chain.lines)
    assert seqs == list(range(1, len(seqs) + 1))  # every record, each once
    numbers = [json.loads(line).get("n") for line in chain.ordered()]
    assert [n for n in numbers if n is not None] == list(range(45))
    types = [json.loads(line)["type"] for line in chain.ordered()]
    assert "audit.sink_degraded" in types and "audit.sink_recovered" in types
    assert _verified(tmp_path / "stream" / "test", signer) == len(seqs)


async def test_full_spool_refuses_records_until_drained(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    log = make_log(tmp_path / "audit.jsonl", js, signer, max_bytes=4096, prune=True)
    await write_records(log, 3)
    js.stop()
    with pytest.raises(AuditError):
        await write_records(log, 100, start=3)
    with pytest.raises(AuditError):  # still full: nothing is admitted unaudited
        await write_records(log, 1, start=1000)
    js.start()
    await wait_live(log)
    await write_records(log, 3, start=2000)
    await log.aclose()
    await js.fetch_to(tmp_path / "stream")
    assert _verified(tmp_path / "stream" / "test", signer) >= 6


async def test_spooling_too_long_refuses_records(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    log = make_log(tmp_path / "audit.jsonl", js, signer, max_bytes=1 << 20, max_age=0.2)
    await write_records(log, 2)
    js.stop()
    await write_records(log, 1, start=2)
    assert sink_of(log).state is SinkState.SPOOLING
    await write_records(log, 1, start=3)  # within the time box
    await asyncio.sleep(0.3)
    with pytest.raises(AuditError):
        await write_records(log, 1, start=4)
    log.close()


async def test_backlog_left_by_a_stopped_writer_is_replayed_on_start(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    path = tmp_path / "audit.jsonl"
    log = make_log(path, js, signer)
    await write_records(log, 5)
    js.stop()
    await write_records(log, 5, start=5)
    await log.aclose()  # spooled records stay on disk, the cursor says how far JetStream got
    js.start()
    again = make_log(path, js, signer)
    await write_records(again, 5, start=10)
    await wait_live(again)
    await again.aclose()
    await js.fetch_to(tmp_path / "stream")
    records = _verified(tmp_path / "stream" / "test", signer)
    assert records == _verified(tmp_path, signer)  # the stream holds the whole local chain


async def test_acknowledged_spool_segments_are_deleted_but_the_head_is_kept(
        tmp_path: Path, js: JetStreamServer, signer: KeyPair) -> None:
    path = tmp_path / "spool" / "audit.jsonl"
    log = make_log(path, js, signer, prune=True, max_bytes=1 << 20,
                   rotation=Rotation(max_bytes=2048))
    await write_records(log, 40)
    await wait_live(log)
    await log.aclose()
    files = sorted(p.name for p in path.parent.glob("audit.jsonl*") if ".lock" not in p.name)
    assert len(files) <= 2  # rotated segments are gone once acknowledged
    again = make_log(path, js, signer, prune=True)
    await write_records(again, 1, start=40)  # the chain resumes from the kept head
    await again.aclose()
    await js.fetch_to(tmp_path / "stream")
    assert _verified(tmp_path / "stream" / "test", signer) > 40


async def test_a_stream_without_integrity_settings_is_refused(js: JetStreamServer) -> None:
    conn = await nats.connect(js.url)
    weak = {**StreamSpec().config(), "deny_delete": False, "discard": "old"}
    await api(conn, f"STREAM.CREATE.{STREAM}", weak)
    check = await ensure_stream(conn, StreamSpec(), create=True)
    await conn.close()
    assert not check.created
    assert check.weaknesses == ["deny_delete_off", "discard_old"]
