"""The closed set of match conditions a rule can test, and the facts they test.

Each condition is a small frozen value with a ``key`` (the ``match:`` key it came from, shown in
traces) and ``holds(facts, if_unknown=...)``. New matchers (claims, CIDRs, connection types,
connect windows) are new classes here plus a field on ``model.Match``; the engine does not
change.

Some facts can be unreadable: a client host that is not an IP address, a connection type
nats-server reported in a way we do not know. A condition on such a fact answers
``if_unknown``, which the rule's effect decides (``model.Rule.fails_closed``): false for an
allow rule, so it does not grant; true for a deny rule or guardrail, so it still applies.
Either way an unreadable fact never makes a connect get more than a readable one could.
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
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Attributes an AWS IAM identity carries (identity.aws_iam): the canonical role/user ARN and the
# 12-digit account id from STS GetCallerIdentity.
AWS_ARN_ATTRIBUTE = "arn"
AWS_ACCOUNT_ATTRIBUTE = "account"
GROUPS_ATTRIBUTE = "groups"


# Condition keys about where and when a client connects, as opposed to who it is.
CONNECTION_KEYS = frozenset({"source_cidrs", "connection_types", "grant.connection_types",
                             "grant.windows"})

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

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """Whether the condition is true for these facts; ``if_unknown`` when a fact it
        reads cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class SourceIs:
    """``source:`` the identity was verified by this kind of source."""

    source: IdentitySource
    key: str = "source"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the identity's source is ``source``."""
        return facts.identity.source == self.source


@dataclass(frozen=True, slots=True)
class IssuerIs:
    """``issuer:`` exact, case-sensitive issuer (OIDC ``iss``; empty for nkeys)."""

    issuer: str
    key: str = "issuer"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the identity's issuer equals ``issuer`` exactly."""
        return facts.identity.issuer == self.issuer


@dataclass(frozen=True, slots=True)
class SubjectIn:
    """``subject:`` the identity's source-local subject is one of these exact strings."""

    subjects: frozenset[str]
    key: str = "subject"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the identity's subject is in ``subjects``."""
        return facts.identity.subject in self.subjects


@dataclass(frozen=True, slots=True)
class SubjectGlob:
    """``subject_glob:`` the identity's subject matches one of these segment-aware globs."""

    globs: tuple[Glob, ...]
    key: str = "subject_glob"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
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

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
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

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the attribute passes the test (absent is false unless ``present: false``)."""
        return self.test.holds(facts.identity.attributes.get(self.name), fail_closed=if_unknown)

    def missing(self, facts: Facts) -> bool:
        """Whether the claim this condition reads is absent (for explain output)."""
        return self.name not in facts.identity.attributes


def client_address(host: str) -> IpAddress | None:
    """``client_info.host`` as an IP address, or ``None`` when it is not exactly one.

    An IPv4-mapped IPv6 address (``::ffff:10.1.2.3``, what a dual-stack listener reports
    for an IPv4 client) is that IPv4 address. Nothing else is stripped or guessed: a name
    (``localhost``), an empty host, surrounding space, or a zone (``10.1.2.3%eth0``,
    ``fe80::1%eth0``; ``ipaddress`` would parse the latter and then ignore the zone in
    ``in``) is not an address.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        return address.ipv4_mapped or address
    return address


@dataclass(frozen=True, slots=True)
class SourceCidr:
    """``source_cidrs:`` the client's address (``client_info.host``) is in one of these.

    nats-server skips the user JWT ``src`` check on the callout path (``validateSrc`` is only
    called in ``auth.go``, not for callout-issued users), so we check here.
    A host that is not an address (``client_address``) is unknown.
    """

    networks: tuple[IpNetwork, ...]
    key: str = "source_cidrs"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the client's host address lies in any network."""
        address = client_address(facts.request.client.host)
        if address is None:
            return if_unknown
        return any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class ConnectionTypeIn:
    """``connection_types:`` the client connected over one of these transports."""

    types: frozenset[ConnectionType]
    key: str = "connection_types"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when the connect's type (STANDARD, WEBSOCKET, MQTT, LEAFNODE) is listed;
        UNKNOWN (an empty or unrecognised type) is unknown, never listed."""
        kind = facts.request.client.connection_type
        if kind is ConnectionType.UNKNOWN:
            return if_unknown
        return kind in self.types


@dataclass(frozen=True, slots=True)
class WithinWindows:
    """``grant.windows``: ``now`` falls in one of the connect windows, in ``zone``."""

    windows: tuple[Window, ...]
    zone: str
    key: str = "grant.windows"

    def holds(self, facts: Facts, *, if_unknown: bool) -> bool:
        """True when ``now`` is inside any window."""
        return time_left(self.windows, self.zone, facts.now) is not None
