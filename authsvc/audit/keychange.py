"""Key changes between two recorded key sets. Pure: values in, values out.

A key set names, by role, the public half of every key the service holds; never a seed:

    {"issuer": "A...", "service": "U...", "xkey": "X..." | null, "audit": "U..." | null,
     "account_signing": {"APP": "A...", ...}}

``service.start`` records the set in use and every checkpoint restates it. When the set at
start differs from the one last recorded in the chain, a ``key.changed`` record lists per
role the old and the new public key: auditors ask which keys signed what, and when they
changed (SOC 2 CC6.1, management of cryptographic keys).
Roles are compared only when the old set mentioned them:
a set recorded before a role was recorded at all says nothing about that role, and a
change must not be claimed from silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from authsvc.audit.checkpoint import CHECKPOINT_TYPE

KEY_CHANGED_TYPE = "key.changed"
START_TYPE = "service.start"
# Records whose ``keys`` member states the key set in force when they were written.
KEY_STATE_TYPES = frozenset({START_TYPE, KEY_CHANGED_TYPE, CHECKPOINT_TYPE})
ACCOUNT_SIGNING = "account_signing"


class Change(StrEnum):
    """What happened to the key of one role. Stable codes (docs/audit.md)."""

    ADDED = "added"        # no key before (e.g. xkey turned on, a new account)
    REMOVED = "removed"    # no key now
    REPLACED = "replaced"  # a different key (a rotation)


@dataclass(frozen=True, slots=True)
class KeyChange:
    role: str  # issuer, service, xkey, audit, account_signing.<NAME>
    change: Change
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "change": self.change.value, "old": self.old,
                "new": self.new}


@dataclass(frozen=True, slots=True)
class RecordedKeys:
    """A key set as the chain recorded it, and which record did."""

    keys: Mapping[str, Any]
    seq: int
    event_id: str
    type: str
    time: str


def key_set(*, issuer: str, service: str | None, xkey: str | None, audit: str | None,
            account_signing: Mapping[str, str]) -> dict[str, Any]:
    """The ``keys`` member for the keys one run holds (public keys only)."""
    return {"issuer": issuer, "service": service, "xkey": xkey, "audit": audit,
            ACCOUNT_SIGNING: dict(sorted(account_signing.items()))}


def recorded(record: Mapping[str, Any]) -> RecordedKeys | None:
    """The key set a stored record states, or None if it states none."""
    keys, seq = record.get("keys"), record.get("seq")
    if record.get("type") not in KEY_STATE_TYPES or not isinstance(keys, dict) \
            or not isinstance(seq, int):
        return None
    return RecordedKeys(keys=keys, seq=seq, event_id=str(record.get("event_id", "")),
                        type=str(record["type"]), time=str(record.get("time", "")))


def _key(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def roles(keys: Mapping[str, Any]) -> dict[str, str | None]:
    """Flat ``role -> public key`` (None: no key); a map's members as ``<map>.<name>``."""
    flat: dict[str, str | None] = {}
    for role, value in keys.items():
        if isinstance(value, dict):
            flat.update({f"{role}.{name}": _key(key) for name, key in value.items()})
        else:
            flat[role] = _key(value)
    return flat


def _compared(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Roles the old set mentioned: its scalars, and every member of a map it held."""
    names = set(roles(old))
    for role, value in old.items():
        if isinstance(value, dict):
            other = new.get(role)
            names.update(f"{role}.{name}" for name in (other if isinstance(other, dict)
                                                      else {}))
    return sorted(names)


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[KeyChange, ...]:
    """Every role whose key differs from ``old`` to ``new``, in role order."""
    before, after = roles(old), roles(new)
    changes = []
    for role in _compared(old, new):
        was, now = before.get(role), after.get(role)
        if was == now:
            continue
        kind = Change.ADDED if was is None else (Change.REMOVED if now is None
                                                 else Change.REPLACED)
        changes.append(KeyChange(role, kind, was, now))
    return tuple(changes)


def changed_fields(previous: RecordedKeys, changes: tuple[KeyChange, ...],
                   keys: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``key.changed`` record (besides the envelope)."""
    return {"changes": [change.as_dict() for change in changes], "keys": dict(keys),
            "previous": {"seq": previous.seq, "event_id": previous.event_id,
                         "type": previous.type, "time": previous.time}}


def changes_of(record: Mapping[str, Any]) -> list[KeyChange]:
    """The changes a stored ``key.changed`` record lists (entries it cannot read skipped)."""
    found = []
    entries = record.get("changes") if record.get("type") == KEY_CHANGED_TYPE else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            kind = Change(str(entry.get("change")))
        except ValueError:
            continue
        found.append(KeyChange(str(entry.get("role", "")), kind, _key(entry.get("old")),
                               _key(entry.get("new"))))
    return found
