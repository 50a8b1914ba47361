"""The closed set of match conditions a rule can test, and the facts they test.

Each condition is a small frozen value with a ``key`` (the ``match:`` key it came from, shown in
traces) and ``holds(facts)``. New matchers (claims, CIDRs, connection types, connect windows)
are new classes here plus a field on ``model.Match``; the engine does not change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from authsvc.domain import ConnectionType, ConnectRequest, Identity, IdentitySource
from authsvc.policy.claims import ClaimTest
from authsvc.policy.globs import Glob
from authsvc.policy.windows import Window, time_left

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Attributes an AWS IAM identity carries (identity.aws_iam): the canonical role/user ARN and the
# 12-digit account id from STS GetCallerIdentity.
AWS_ARN_ATTRIBUTE = "arn"
AWS_ACCOUNT_ATTRIBUTE = "account"
GROUPS_ATTRIBUTE = "groups"


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


@dataclass(frozen=True, slots=True)
class SubjectGlob:
    """``subject_glob:`` the identity's subject matches one of these segment-aware globs."""

    globs: tuple[Glob, ...]
    key: str = "subject_glob"

    def holds(self, facts: Facts) -> bool:
        """True when any glob matches the identity's subject."""
        return any(glob.matches(facts.identity.subject) for glob in self.globs)


@dataclass(frozen=True, slots=True)
class AttributeGlob:
    """``aws.arn`` / ``aws.account``: an AWS IAM identity's attribute matches one of these globs.

    Only identities the AWS IAM verifier produced qualify: an OIDC issuer may declare a claim
    named ``arn`` or ``account``, and a token carrying ``arn: arn:aws:iam::...:role/admin``
    must never satisfy an ``aws`` condition of a rule that does not also pin ``source``.
    """

    attribute: str
    globs: tuple[Glob, ...]
    key: str

    def holds(self, facts: Facts) -> bool:
        """True for an AWS IAM identity whose attribute is a string matched by any glob."""
        if facts.identity.source is not IdentitySource.AWS_IAM:
            return False
        value = facts.identity.attributes.get(self.attribute)
        return isinstance(value, str) and any(glob.matches(value) for glob in self.globs)


@dataclass(frozen=True, slots=True)
class ClaimHolds:
    """``claims.<name>`` (or ``groups``): a typed test on one identity attribute."""

    name: str
    test: ClaimTest
    key: str

    def holds(self, facts: Facts) -> bool:
        """True when the attribute passes the test (absent is false unless ``present: false``)."""
        return self.test.holds(facts.identity.attributes.get(self.name))

    def missing(self, facts: Facts) -> bool:
        """Whether the claim this condition reads is absent (for explain output)."""
        return self.name not in facts.identity.attributes


@dataclass(frozen=True, slots=True)
class SourceCidr:
    """``source_cidrs:`` the client's address (``client_info.host``) is in one of these.

    nats-server skips the user JWT ``src`` check on the callout path (``validateSrc`` is only
    called in ``auth.go``, not for callout-issued users), so we check here.
    An unparsable or missing host is false.
    """

    networks: tuple[IpNetwork, ...]
    key: str = "source_cidrs"

    def holds(self, facts: Facts) -> bool:
        """True when the client's host address lies in any network."""
        try:
            address = ipaddress.ip_address(facts.request.client.host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class ConnectionTypeIn:
    """``connection_types:`` the client connected over one of these transports."""

    types: frozenset[ConnectionType]
    key: str = "connection_types"

    def holds(self, facts: Facts) -> bool:
        """True when the connect's type (STANDARD, WEBSOCKET, MQTT, LEAFNODE) is listed."""
        return facts.request.client.connection_type in self.types


@dataclass(frozen=True, slots=True)
class WithinWindows:
    """``grant.windows``: ``now`` falls in one of the connect windows, in ``zone``."""

    windows: tuple[Window, ...]
    zone: str
    key: str = "grant.windows"

    def holds(self, facts: Facts) -> bool:
        """True when ``now`` is inside any window."""
        return time_left(self.windows, self.zone, facts.now) is not None
