"""Signed checkpoints: an ed25519 (nkey) signature over the chain head, its range and time.

The signed statement is a small text in the spirit of C2SP ``tlog-checkpoint``
(github.com/C2SP/C2SP, tlog-checkpoint.md):
an origin line, then one field per line. Anyone holding the
published public key can check it without trusting the log's host; the hash chain then
extends the guarantee to every record up to ``seq_last``.

The checkpoint record itself comes after ``seq_last``, so the chain cannot vouch for what it
says beyond the signed fields, and the last checkpoint of a log is covered by no later one.
Version 2 (``/v2``, written since checkpoints restate the key set) therefore also signs the
SHA-256 of the record's own ``keys`` member (``keys_sha256``; ``-`` when it has none). A
version 1 checkpoint verifies as before; its ``keys`` are not covered.
"""

from __future__ import annotations

import hashlib
from base64 import b64decode, b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from authsvc.audit.chain import canonical

ORIGIN = "authsvc-audit-checkpoint/v1"
ORIGIN_V2 = "authsvc-audit-checkpoint/v2"
NO_KEYS = "-"
CHECKPOINT_TYPE = "audit.checkpoint"

# (public key, data, signature) -> valid? ; the nkeys verify function has this shape.
SignatureCheck = Callable[[str, bytes, bytes], bool]


class CheckpointSigner(Protocol):
    """An nkey pair (authsvc.protocol.nkeys.KeyPair fits)."""

    @property
    def public_key(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint vouches for: records ``seq_first..seq_last`` ending in ``head``."""

    chain: str
    seq_first: int
    seq_last: int
    head: str
    time: str
    keys_sha256: str | None = None  # v2: ``keys_digest`` of the record's keys; None: v1

    def statement(self) -> bytes:
        origin = ORIGIN if self.keys_sha256 is None else ORIGIN_V2
        text = (f"{origin}\n{self.chain}\n{self.seq_first}\n{self.seq_last}\n{self.head}\n"
                f"{self.time}\n")
        if self.keys_sha256 is not None:
            text += f"{self.keys_sha256}\n"
        return text.encode()


def keys_digest(keys: Any) -> str:
    """What a v2 checkpoint signs of its record's ``keys`` member (None: absent)."""
    return NO_KEYS if keys is None else hashlib.sha256(canonical(keys)).hexdigest()


def sign(checkpoint: Checkpoint, signer: CheckpointSigner) -> dict[str, Any]:
    """The ``checkpoint`` member of an ``audit.checkpoint`` record."""
    member: dict[str, Any] = {
        "chain": checkpoint.chain, "seq_first": checkpoint.seq_first,
        "seq_last": checkpoint.seq_last, "head": checkpoint.head, "time": checkpoint.time,
    }
    if checkpoint.keys_sha256 is not None:
        member["keys_sha256"] = checkpoint.keys_sha256
    member["key"] = signer.public_key
    member["sig"] = b64encode(signer.sign(checkpoint.statement())).decode()
    return member


def parse(member: Any) -> tuple[Checkpoint, str, bytes] | None:
    """(checkpoint, signing key, signature) from a record's member, or None if malformed.

    Types are taken as written, never converted: ``"seq_last": "600"`` or ``600.0`` is not
    what the writer writes, and converting (``int(1e400)``) can fail or round.
    """
    if not isinstance(member, dict):
        return None
    chain, head, time, key, sig = (member.get(name) for name in
                                   ("chain", "head", "time", "key", "sig"))
    first, last = _seq(member.get("seq_first")), _seq(member.get("seq_last"))
    keys_sha256 = member.get("keys_sha256")
    if not (isinstance(chain, str) and isinstance(head, str) and isinstance(time, str)
            and isinstance(key, str) and isinstance(sig, str)) or first is None \
            or last is None or not (keys_sha256 is None or isinstance(keys_sha256, str)):
        return None
    try:
        signature = b64decode(sig, validate=True)
    except ValueError:  # binascii.Error, and text that is not ASCII
        return None
    return Checkpoint(chain=chain, seq_first=first, seq_last=last, head=head,
                      time=time, keys_sha256=keys_sha256), key, signature


def _seq(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
