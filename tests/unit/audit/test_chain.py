"""The hash chain and event ids: pure functions."""

from __future__ import annotations

import json
import uuid

from authsvc.audit import GENESIS, ChainHead, record_hash
from authsvc.audit.chain import link
from authsvc.audit.ids import event_id
from tests.unit.audit.conftest import START


def test_link_numbers_and_hashes_records_in_a_chain() -> None:
    line1, head1 = link({"type": "a"}, ChainHead())
    line2, head2 = link({"type": "b"}, head1)
    first, second = json.loads(line1), json.loads(line2)
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS)
    assert (second["seq"], second["prev_hash"]) == (2, first["record_hash"])
    assert record_hash(second) == second["record_hash"] == head2.hash


def test_any_edit_changes_the_hash() -> None:
    line, _ = link({"type": "decision", "decision": "deny"}, ChainHead())
    record = json.loads(line)
    record["decision"] = "allow"
    assert record_hash(record) != record["record_hash"]


def test_event_ids_are_uuid7_time_ordered_and_unique() -> None:
    ids = [event_id(START) for _ in range(1000)]
    assert len(set(ids)) == 1000
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(parsed.hex[:12], 16) == int(START.timestamp() * 1000)
