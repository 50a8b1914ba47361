"""The hash chain and event ids: pure functions."""

from __future__ import annotations

import json
import uuid

import pytest

from authsvc.audit import GENESIS, ChainHead, checkpoint, record_hash
from authsvc.audit.chain import link, stored_record
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


@pytest.mark.parametrize(("raw", "readable", "is_canonical"), [
    (b'{"a":1,"b":null}', True, True),
    (b'{"a":123456789012345678901234567890}', True, True),  # written by the json fallback
    (b'{"a":1,"a":2}', False, False),       # RFC 7493 2.3: names unique
    (b'{"a":NaN}', False, False),           # not JSON
    (b'{"a":-Infinity}', False, False),
    (b'{"a":1e400}', False, False),         # beyond the double range
    (b'{"a":"\\ud800"}', False, False),     # a lone surrogate has no UTF-8 form
    (b'{"a":"\xff"}', False, False),        # not UTF-8
    (b'[1]', False, False),                 # not an object
    (b'[' * 100_000, False, False),         # nesting beyond any parser's depth
    (b'{"b":null,"a":1}', True, False),     # member order
    (b'{"a": 1}', True, False),             # spacing
    (b'{"a":1E2}', True, False),            # a number's form
    (b'{"a":"\\u0041"}', True, False),      # an escape where UTF-8 is written
])
def test_stored_record_reads_strict_json_and_tells_canonical_bytes(
        raw: bytes, readable: bool, is_canonical: bool) -> None:
    record, canon = stored_record(raw)
    assert (record is not None, canon) == (readable, is_canonical)


@pytest.mark.parametrize("member", [
    {"seq_last": 1e400}, {"seq_last": 3.0}, {"seq_last": "3"}, {"seq_first": True},
    {"head": None}, {"sig": "AAAA!"}, {"sig": "ü"}, {"key": 5},
])
def test_checkpoint_members_of_the_wrong_type_are_malformed(member: dict[str, object]) -> None:
    good = {"chain": "c", "seq_first": 1, "seq_last": 3, "head": "h", "time": "t", "key": "U",
            "sig": "AAAA"}
    assert checkpoint.parse(good) is not None
    assert checkpoint.parse({**good, **member}) is None
