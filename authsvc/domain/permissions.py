"""What a granted client may do, in NATS terms (nats-io/jwt v2 ``Permissions``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class SubjectPermission:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponsePermission:
    """``resp``: may publish ``max_msgs`` replies to a received reply subject within ``ttl``."""

    max_msgs: int = 1
    ttl: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Permissions:
    pub: SubjectPermission = field(default_factory=SubjectPermission)
    sub: SubjectPermission = field(default_factory=SubjectPermission)
    resp: ResponsePermission | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """User limits; -1 means unlimited.

    nats-server 2.15 enforces none of them for callout users (docs/policy.md).
    """

    subs: int = UNLIMITED
    data: int = UNLIMITED
    payload: int = UNLIMITED
