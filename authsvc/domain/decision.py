"""The outcome of evaluating one connect: Allow (with a Grant) or Deny (with a reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from authsvc.domain.permissions import Limits, Permissions
from authsvc.domain.reasons import DenyReason


@dataclass(frozen=True, slots=True)
class Grant:
    """Where the client goes and what it may do there, for at most ``ttl``."""

    account: str
    permissions: Permissions
    limits: Limits = field(default_factory=Limits)
    ttl: timedelta = timedelta(hours=1)
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Allow:
    grant: Grant


@dataclass(frozen=True, slots=True)
class Deny:
    """A refusal. ``detail`` is for the audit log only; it never reaches the client."""

    reason: DenyReason
    detail: str = ""
    rule_ids: tuple[str, ...] = ()


Decision = Allow | Deny
