"""Signed checkpoints: an ed25519 (nkey) signature over the chain head, its range and time.

The signed statement is a small text in the spirit of C2SP ``tlog-checkpoint``
(github.com/C2SP/C2SP, tlog-checkpoint.md):
an origin line, then one field per line. Anyone holding the
published public key can check it without trusting the log's host; the hash chain then
extends the guarantee to every record up to ``seq_last``.
"""

from __future__ import annotations

from base64 import b64decode, b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

ORIGIN = "authsvc-audit-checkpoint/v1"
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

    def statement(self) -> bytes:
        return (f"{ORIGIN}\n{self.chain}\n{self.seq_first}\n{self.seq_last}\n{self.head}\n"
                f"{self.time}\n").encode()


def sign(checkpoint: Checkpoint, signer: CheckpointSigner) -> dict[str, Any]:
    """The ``checkpoint`` member of an ``audit.checkpoint`` record."""
    return {
        "chain": checkpoint.chain, "seq_first": checkpoint.seq_first,
        "seq_last": checkpoint.seq_last, "head": checkpoint.head, "time": checkpoint.time,
        "key": signer.public_key,
        "sig": b64encode(signer.sign(checkpoint.statement())).decode(),
    }


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
    if not (isinstance(chain, str) and isinstance(head, str) and isinstance(time, str)
            and isinstance(key, str) and isinstance(sig, str)) or first is None \
            or last is None:
        return None
    try:
        signature = b64decode(sig, validate=True)
    except ValueError:  # binascii.Error, and text that is not ASCII
        return None
    return Checkpoint(chain=chain, seq_first=first, seq_last=last, head=head,
                      time=time), key, signature


def _seq(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
