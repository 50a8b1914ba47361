"""The spool side of the JetStream sink: reading records back, pruning, the cursor."""

from __future__ import annotations

from pathlib import Path

from authsvc.audit import Rotation
from authsvc.audit.spool import Cursor, LocalRecords, newest_seq, prune
from tests.unit.audit.conftest import MakeLog, decision


def _write(make_log: MakeLog, count: int, **kwargs: object) -> Path:
    log = make_log(**kwargs)
    for n in range(count):
        log.append(decision(n))
    log.close()
    return log.sink.path


def test_after_returns_records_in_order_from_a_seq(make_log: MakeLog) -> None:
    path = _write(make_log, 10)
    records = LocalRecords(path)
    assert [p.seq for p in records.after(0, limit=3)] == [1, 2, 3]
    assert [p.seq for p in records.after(3, limit=100)] == list(range(4, 11))
    assert [p.seq for p in records.after(2, limit=2)] == [3, 4]  # a step back rescans
    assert records.after(10, limit=5) == []


def test_after_follows_rotation_and_skips_a_torn_tail(make_log: MakeLog) -> None:
    path = _write(make_log, 30, rotation=Rotation(max_bytes=600))
    assert len(list(path.parent.glob("audit.jsonl.*"))) > 2
    with path.open("ab") as handle:
        handle.write(b'{"seq": 99, "event_id"')  # a crash mid-write
    records = LocalRecords(path)
    seen = []
    while batch := records.after(seen[-1] if seen else 0, limit=4):
        seen.extend(p.seq for p in batch)
    assert seen == list(range(1, newest_seq(path) + 1))
    assert records.sizes_after(newest_seq(path) - 2).keys() == {newest_seq(path) - 1,
                                                                newest_seq(path)}


def test_prune_deletes_acknowledged_files_but_keeps_the_head(make_log: MakeLog) -> None:
    path = _write(make_log, 30, rotation=Rotation(max_bytes=600))
    rotated = [p for p in path.parent.glob("audit.jsonl.*") if p.suffix != ".lock"]
    head = newest_seq(path)
    assert prune(path, 0) == 0  # nothing acknowledged, nothing deleted
    assert prune(path, head) == len(rotated) - (0 if path.stat().st_size else 1)
    assert newest_seq(path) == head
    path.rename(path.with_name("audit.jsonl.29990101T000000.000000Z"))  # as rotation does
    path.write_bytes(b"")  # the active file empty: the newest rotated file holds the head
    assert prune(path, head) == 0
    assert newest_seq(path) == head


def test_cursor_survives_and_defaults_to_zero(tmp_path: Path) -> None:
    cursor = Cursor(tmp_path / "audit.jsonl")
    assert cursor.load() == 0
    cursor.store(1234)
    cursor.store(99, durable=True)
    assert Cursor(tmp_path / "audit.jsonl").load() == 99
    assert ".jsonl" not in cursor.path.name  # never mistaken for a log file by verify
