"""Event ids: UUIDv7 (RFC 9562 section 5.7), time-ordered and unique per record.

The id is also the JetStream ``Nats-Msg-Id``, so a record re-sent after an outage is
deduplicated by the stream instead of stored twice.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime


def event_id(now: datetime) -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are used
    value = (millis << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
