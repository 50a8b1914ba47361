"""The closed set of match conditions a rule can test, and the facts they test.

Each condition is a small frozen value with a ``key`` (the ``match:`` key it came from, shown in
traces) and ``holds(facts)``. New matchers (claims, CIDRs, connection types, connect windows)
are new classes here plus a field on ``model.Match``; the engine does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from authsvc.domain import ConnectRequest, Identity, IdentitySource


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a condition may look at: the verified identity, the connect, the time."""

    identity: Identity
    request: ConnectRequest
    now: datetime


class Condition(Protocol):
    """One test a rule's ``match`` makes."""

    @property
    def key(self) -> str:
        """The ``match:`` key this condition was written as."""
        ...

    def holds(self, facts: Facts) -> bool:
        """Whether the condition is true for these facts."""
        ...


@dataclass(frozen=True, slots=True)
class SourceIs:
    """``source:`` the identity was verified by this kind of source."""

    source: IdentitySource
    key: str = "source"

    def holds(self, facts: Facts) -> bool:
        """True when the identity's source is ``source``."""
        return facts.identity.source == self.source


@dataclass(frozen=True, slots=True)
class IssuerIs:
    """``issuer:`` exact, case-sensitive issuer (OIDC ``iss``; empty for nkeys)."""

    issuer: str
    key: str = "issuer"

    def holds(self, facts: Facts) -> bool:
        """True when the identity's issuer equals ``issuer`` exactly."""
        return facts.identity.issuer == self.issuer


@dataclass(frozen=True, slots=True)
class SubjectIn:
    """``subject:`` the identity's source-local subject is one of these exact strings."""

    subjects: frozenset[str]
    key: str = "subject"

    def holds(self, facts: Facts) -> bool:
        """True when the identity's subject is in ``subjects``."""
        return facts.identity.subject in self.subjects
