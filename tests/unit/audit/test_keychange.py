"""Comparing key sets: which roles changed, and how; never a change claimed from silence."""

from __future__ import annotations

from typing import Any

import pytest

from authsvc.audit.keychange import (
    KEY_CHANGED_TYPE,
    Change,
    KeyChange,
    RecordedKeys,
    changed_fields,
    changes_of,
    compare,
    key_set,
    recorded,
)


def keys(**overrides: Any) -> dict[str, Any]:
    base = {"issuer": "AISSUER1", "service": "USERVICE1", "xkey": "XKEY1",
            "audit": "UAUDIT1", "account_signing": {"APP": "ASIGN1"}}
    return {**base, **overrides}


def test_the_same_set_has_no_changes() -> None:
    assert compare(keys(), keys()) == ()


@pytest.mark.parametrize(("new", "expected"), [
    (keys(issuer="AISSUER2"), [KeyChange("issuer", Change.REPLACED, "AISSUER1", "AISSUER2")]),
    (keys(xkey=None), [KeyChange("xkey", Change.REMOVED, "XKEY1", None)]),
    (keys(service="USERVICE2", audit="UAUDIT2"),
     [KeyChange("audit", Change.REPLACED, "UAUDIT1", "UAUDIT2"),
      KeyChange("service", Change.REPLACED, "USERVICE1", "USERVICE2")]),
    (keys(account_signing={"APP": "ASIGN2", "OPS": "AOPS1"}),
     [KeyChange("account_signing.APP", Change.REPLACED, "ASIGN1", "ASIGN2"),
      KeyChange("account_signing.OPS", Change.ADDED, None, "AOPS1")]),
    (keys(account_signing={}), [KeyChange("account_signing.APP", Change.REMOVED, "ASIGN1", None)]),
])
def test_each_changed_role_is_named_with_old_and_new_key(new: dict[str, Any],
                                                         expected: list[KeyChange]) -> None:
    assert list(compare(keys(), new)) == expected


def test_a_key_turned_on_is_added() -> None:
    assert compare(keys(xkey=None), keys()) == (KeyChange("xkey", Change.ADDED, None, "XKEY1"),)


def test_roles_an_older_record_did_not_mention_are_not_compared() -> None:
    legacy = {"issuer": "AISSUER1", "xkey": "XKEY1", "audit": "UAUDIT1"}  # no service, no map
    assert compare(legacy, keys()) == ()
    assert compare(legacy, keys(issuer="AISSUER2")) == (
        KeyChange("issuer", Change.REPLACED, "AISSUER1", "AISSUER2"),)


def test_key_set_records_public_keys_by_role() -> None:
    made = key_set(issuer="AISSUER1", service="USERVICE1", xkey=None, audit="UAUDIT1",
                   account_signing={"OPS": "AOPS1", "APP": "ASIGN1"})
    assert made == keys(xkey=None, account_signing={"APP": "ASIGN1", "OPS": "AOPS1"})


def test_a_key_changed_record_reads_back_its_changes() -> None:
    previous = RecordedKeys(keys=keys(), seq=7, event_id="e7", type="service.start",
                            time="2026-03-01T00:00:00.000Z")
    new = keys(issuer="AISSUER2", xkey=None)
    changes = compare(previous.keys, new)
    record = {"type": KEY_CHANGED_TYPE, "seq": 9, **changed_fields(previous, changes, new)}
    assert changes_of(record) == list(changes)
    assert record["previous"]["seq"] == 7 and record["keys"] == new
    assert recorded(record) == RecordedKeys(keys=new, seq=9, event_id="", type=KEY_CHANGED_TYPE,
                                            time="")


def test_unreadable_change_entries_are_skipped() -> None:
    record = {"type": KEY_CHANGED_TYPE, "changes": [
        "junk", {"role": "xkey", "change": "exploded"},
        {"role": "issuer", "change": "replaced", "old": "A1", "new": "A2"}]}
    assert changes_of(record) == [KeyChange("issuer", Change.REPLACED, "A1", "A2")]
    assert changes_of({"type": "decision", "changes": record["changes"]}) == []


@pytest.mark.parametrize("record", [
    {"type": "decision", "seq": 3, "keys": keys()},  # only start, checkpoint, key.changed
    {"type": "service.start", "seq": 3},
    {"type": "service.start", "seq": 3, "keys": ["AISSUER1"]},
    {"type": "service.start", "keys": keys()},
])
def test_only_key_state_records_state_a_key_set(record: dict[str, Any]) -> None:
    assert recorded(record) is None
