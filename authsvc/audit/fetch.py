"""Read the audit stream back into per-instance files that ``verify`` and ``export`` take.

The stream holds every instance's chain, interleaved, possibly out of order after an
outage (a replayed record can land after later ones) and, past the duplicate window, with
exact duplicates. ``collect`` groups records by ``instance``, orders them by ``seq`` and
drops exact duplicates (the same bytes: a replay publishes the stored line unchanged),
counting them. Two *different* records with one seq are kept, in stream order, so
``verify`` reports them (``seq_order``, or ``altered``): that is a fork or tampering, never
something to smooth over. A record's own ``record_hash`` is a claim, not an identity: a
forged copy that kept it must not make the genuine record (or itself) a "duplicate".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authsvc.audit.stream import StoredMsg
from authsvc.errors import AuditError

FILE_NAME = "audit.jsonl"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass
class Chain:
    """One instance's records as read from the stream."""

    instance: str
    # (seq, SHA-256 of the message's bytes) -> line, in stream order
    lines: dict[tuple[int, str], bytes] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, seq: int, line: bytes) -> None:
        key = (seq, hashlib.sha256(line).hexdigest())
        if key in self.lines:
            self.duplicates += 1
        else:
            self.lines[key] = line

    def ordered(self) -> list[bytes]:
        """By seq; copies that differ under one seq in the order the stream holds them."""
        return [self.lines[key] for key in sorted(self.lines, key=lambda key: key[0])]


@dataclass
class Collected:
    """Everything read: chains by instance, and messages that were not chained records."""

    chains: dict[str, Chain] = field(default_factory=dict)
    messages: int = 0
    unreadable: list[int] = field(default_factory=list)  # stream sequences
    last_stream_seq: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "unreadable": len(self.unreadable),
            "instances": {name: {"records": len(c.lines), "duplicates_dropped": c.duplicates}
                          for name, c in sorted(self.chains.items())},
            "last_stream_seq": self.last_stream_seq,
        }


async def collect(messages: AsyncIterable[StoredMsg]) -> Collected:
    """Group, order and deduplicate the stream's records (see the module docstring)."""
    found = Collected()
    chains: defaultdict[str, Chain] = defaultdict(lambda: Chain(""))
    async for msg in messages:
        found.messages += 1
        found.last_stream_seq = msg.stream_seq
        try:
            record = json.loads(msg.data)
        except (ValueError, RecursionError):
            record = None
        # One record is one line: a message with a newline would write several.
        if not (isinstance(record, dict) and isinstance(record.get("seq"), int)
                and "instance" in record and "record_hash" in record
                and b"\n" not in msg.data):
            found.unreadable.append(msg.stream_seq)
            continue
        instance = str(record["instance"])
        chain = chains[instance]
        chain.instance = instance
        chain.add(record["seq"], msg.data)
    found.chains = dict(chains)
    return found


def folder_name(instance: str) -> str:
    """The instance as a safe folder name: it comes from the stream, so never a path."""
    if _SAFE.match(instance) and not instance.startswith("."):
        return instance
    return "instance-" + hashlib.sha256(instance.encode()).hexdigest()[:16]


def claim_out(out: Path, *, replace: bool) -> None:
    """Refuse a non-empty ``out`` unless ``replace``: fetched copies are evidence, and a
    second fetch must not silently overwrite the first. Raises AuditError."""
    if out.exists() and not out.is_dir():
        raise AuditError(f"fetch directory {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not replace:
        raise AuditError(f"fetch directory {out} is not empty; a fetch never overwrites "
                         "earlier copies: choose a new directory, or replace them with --force")


def write(found: Collected, out: Path) -> list[Path]:
    """``out/<instance>/audit.jsonl`` per instance, records in seq order; the files written."""
    written = []
    for name, chain in sorted(found.chains.items()):
        folder = out / folder_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILE_NAME
        path.write_bytes(b"".join(line + b"\n" for line in chain.ordered()))
        written.append(path)
    return written
