"""The slice of the NATS client protocol the load generator speaks, as pure functions.

A connect attempt is: read ``INFO {json}``, send ``CONNECT {json}`` + ``PING``, then read lines
until ``PONG`` (the server accepted the credentials) or ``-ERR`` (it did not). Anything else the
server may legitimately send in between (``PING``, ``+OK``, an async ``INFO``) is skipped.
See https://docs.nats.io/reference/reference-protocols/nats-protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: nats-server's default ``max_control_line`` is 4096 bytes and applies to the CONNECT line.
#: Our CONNECT lines are ~250 bytes; refuse to build one that would be cut off and turn a
#: credential problem into a misleading ``maximum control line exceeded``.
MAX_CONTROL_LINE = 4096

#: Upper bound for any line we read from the server; INFO is ~300-600 bytes on loopback.
MAX_SERVER_LINE = 64 * 1024


class WireError(ValueError):
    """The server sent something that is not the protocol we expect."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The fields of the server's INFO line the load generator cares about."""

    server_id: str
    nonce: str | None
    auth_required: bool
    max_payload: int


class Reply(Enum):
    """How a line read after CONNECT+PING moves the handshake along."""

    ACCEPTED = "accepted"  # PONG: credentials accepted
    REJECTED = "rejected"  # -ERR: credentials (or something else) refused
    IGNORE = "ignore"  # PING, +OK, INFO: keep reading


def parse_info(line: bytes) -> ServerInfo:
    """Parse the server greeting ``INFO {...}\\r\\n``.

    Raises :class:`WireError` when the line is not an INFO line or its JSON is malformed.
    """
    text = line.rstrip(b"\r\n")
    head, _, body = text.partition(b" ")
    if head.upper() != b"INFO" or not body:
        raise WireError(f"expected INFO, got {text[:80]!r}")
    try:
        fields: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WireError(f"malformed INFO JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise WireError("INFO payload is not a JSON object")
    nonce = fields.get("nonce")
    return ServerInfo(
        server_id=str(fields.get("server_id", "")),
        nonce=nonce if isinstance(nonce, str) and nonce else None,
        auth_required=bool(fields.get("auth_required", False)),
        max_payload=int(fields.get("max_payload", 0)),
    )


def connect_line(credentials: dict[str, str]) -> bytes:
    """Build ``CONNECT {...}\\r\\nPING\\r\\n`` carrying *credentials* (token or nkey+sig).

    ``verbose: false`` means no ``+OK``; the trailing ``PING`` makes the server answer ``PONG``
    only once the connection is authorized, which is our success signal.
    """
    options: dict[str, object] = {
        "verbose": False,
        "pedantic": False,
        "protocol": 1,
        "lang": "bench",
        "version": "0.1.0",
        **credentials,
    }
    line = b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + b"\r\n"
    if len(line) > MAX_CONTROL_LINE:
        raise WireError(f"CONNECT line is {len(line)} bytes, over max_control_line")
    return line + b"PING\r\n"


def classify(line: bytes) -> Reply:
    """Classify one server line read while waiting for the handshake to finish."""
    text = line.rstrip(b"\r\n").upper()
    if text == b"PONG":
        return Reply.ACCEPTED
    if text.startswith(b"-ERR"):
        return Reply.REJECTED
    if text in (b"PING", b"+OK") or text.startswith(b"INFO "):
        return Reply.IGNORE
    raise WireError(f"unexpected server line {text[:80]!r}")


def error_text(line: bytes) -> str:
    """The reason of an ``-ERR 'reason'`` line, e.g. ``Authorization Violation``."""
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    return text[4:].strip().strip("'") or "-ERR"
