"""A stored record's fields read by the types docs/audit.md gives them, for export and report.

A record on disk is input: whoever can write the file can put any JSON into it, and only
``verify`` says whether someone did. The tools that read a period (export, its CSV view,
the report) must still get through every record: a field of the wrong type (``identity``
a string, ``rule_ids`` a number, a ``time`` without a UTC offset) reads as absent, and
``malformed`` names it, so that the tools count and report such fields instead of failing
with a traceback halfway through an export.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

OBJECTS = ("identity", "client", "server", "jwt")
TEXTS = ("type", "decision", "reason", "instance", "account", "event_id", "policy_revision",
         "user_nkey", "supersedes")
TEXT_LISTS = ("rule_ids",)


def obj(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An object member; ``{}`` when absent or not an object."""
    value = record.get(name)
    return value if isinstance(value, dict) else {}


def text(record: Mapping[str, Any], name: str) -> str:
    """A string member; ``""`` when absent or not a string."""
    value = record.get(name)
    return value if isinstance(value, str) else ""


def texts(record: Mapping[str, Any], name: str) -> list[str]:
    """A list of strings; ``[]`` when absent, not a list, or holding anything else."""
    value = record.get(name)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return []


def timestamp(record: Mapping[str, Any]) -> datetime | None:
    """``time`` as an aware datetime; None when absent, unreadable or without an offset.

    A time without an offset cannot be placed in a UTC period (and cannot be compared with
    one: Python refuses to order naive and aware datetimes).
    """
    value = record.get("time")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def malformed(record: Mapping[str, Any]) -> list[str]:
    """The members ``record`` holds with a type other than the documented one."""
    def present(name: str) -> bool:
        return record.get(name) is not None

    bad = [name for name in OBJECTS if present(name) and not isinstance(record[name], dict)]
    bad += [name for name in TEXTS if present(name) and not isinstance(record[name], str)]
    bad += [name for name in TEXT_LISTS if present(name) and (
        not isinstance(record[name], list) or not all(isinstance(v, str) for v in record[name]))]
    if present("time") and timestamp(record) is None:
        bad.append("time")
    return bad


def superseding(record: Mapping[str, Any]) -> str:
    """The event id of the allow this record takes back, or ``""``.

    When an allow's record was written but the fsync that would make it durable failed,
    the client is refused and the request's next record, an ``error`` decision, names the
    allow in ``supersedes``: that allow was never granted (docs/audit.md).
    """
    if text(record, "type") != "decision" or text(record, "decision") != "error":
        return ""
    return text(record, "supersedes")
