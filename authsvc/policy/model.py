"""The policy as typed, frozen values: what a security team writes, parsed once at load.

One policy file (several compose into one ``Policy``; user docs in ``docs/policy.md``)::

    apiVersion: authsvc/v1
    kind: Policy
    defaults:                        # optional, in at most one file
      ttl: 1h                        # grant TTL when a rule gives none (default 1h)
      max_ttl: 12h                   # hard ceiling on any TTL (default 12h)
    rules:
      - id: orders-writer            # unique across all files, [a-z0-9][a-z0-9._-]*
        description: Orders service publishes new orders
        effect: allow                # allow (default) | deny
        match:                       # every given condition must hold; at least one required
          source: nkey               # nkey | oidc | aws_iam
          issuer: "https://..."      # exact
          subject: UABC...           # exact string, or a list of exact strings (any of)
        grant:                       # required for allow, forbidden for deny
          account: APP
          ttl: 15m                   # optional; capped by defaults.max_ttl
          publish:   {allow: ["orders.v2.created"], deny: []}
          subscribe: {allow: ["_INBOX.>"], deny: []}
          responses: {max: 1, ttl: 5s}                        # optional
          limits:    {subs: 100, payload: 1048576, data: -1}  # optional; -1 = unlimited

Durations are ``30s``, ``15m``, ``1h``, ``1h30m``, ``2d`` or an integer of seconds. Unknown
keys are errors everywhere. Validation failures raise ``PydanticCustomError`` with a stable
``type`` (``subject_invalid``, ``grant_required``, ...) that the loader turns into a located
``PolicyError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from authsvc.domain import UNLIMITED, ConnectionType, Identity, IdentitySource
from authsvc.policy.claims import ClaimTest
from authsvc.policy.durations import format_duration, parse_duration
from authsvc.policy.globs import ArnGlob, Glob, arn_glob_problem
from authsvc.policy.index import RuleIndex
from authsvc.policy.matchers import (
    AWS_ACCOUNT_ATTRIBUTE,
    AWS_ARN_ATTRIBUTE,
    CONNECTION_KEYS,
    GROUPS_ATTRIBUTE,
    AttributeGlob,
    ClaimHolds,
    Condition,
    ConnectionTypeIn,
    IpNetwork,
    IssuerIs,
    SourceCidr,
    SourceIs,
    SubjectGlob,
    SubjectIn,
    WithinWindows,
)
from authsvc.policy.subjects import validate_subject
from authsvc.policy.templates import check_template, is_template, skeleton
from authsvc.policy.windows import Window, ZoneName

API_VERSION = "authsvc/v1"
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):  # already parsed (model_copy, programmatic construction)
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration_invalid", "{problem}", {"problem": str(exc)}) from exc


def _subject(value: object) -> object:
    if not isinstance(value, str):
        return value  # let the str type report it
    if is_template(value):
        problem = check_template(value)
        if problem is not None:
            raise PydanticCustomError("template_syntax", "invalid template in {subject}: {problem}",
                                      {"subject": repr(value), "problem": problem})
    problem = validate_subject(skeleton(value))
    if problem is not None:
        raise PydanticCustomError(
            "subject_invalid", "invalid subject {subject}: {problem}",
            {"subject": repr(value), "problem": problem},
        )
    return value


def _one_or_many(value: object) -> object:
    # A lone scalar means a one-element list; the element type then reports a non-string.
    return value if isinstance(value, list | tuple) or value is None else [value]


def _cidr(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        # strict=True: "10.0.0.1/8" (host bits set) is a typo for a network, not a wider one.
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr_invalid", "invalid CIDR {value}: {problem}",
                                  {"value": repr(value), "problem": str(exc)}) from exc
    if isinstance(network, ipaddress.IPv6Network):
        if network.network_address.scope_id is not None:
            # ipaddress keeps "%eth0" but ignores it in ``in``: a host on any interface
            # would match, and nothing here knows which interface a client came in on.
            raise PydanticCustomError("cidr_scoped", "CIDR {value} names an interface zone",
                                      {"value": repr(value)})
        if network.subnet_of(_IPV4_MAPPED):
            # Client hosts in this range are matched as the IPv4 address they stand for
            # (matchers.client_address), so this network could never match.
            raise PydanticCustomError(
                "cidr_ipv4_mapped", "CIDR {value} is IPv4-mapped; write it as {ipv4}",
                {"value": repr(value), "ipv4": repr(_unmapped(network))})
    return network


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: ipaddress.IPv6Network) -> str:
    """The IPv4 network an IPv4-mapped IPv6 network stands for."""
    first = network.network_address.ipv4_mapped
    assert first is not None  # network lies in ::ffff:0:0/96
    return f"{first}/{network.prefixlen - 96}"


def _glob(value: object) -> object:
    return Glob(value) if isinstance(value, str) and value else value


def _arn_glob(value: object) -> object:
    if not (isinstance(value, str) and value):
        return value
    problem = arn_glob_problem(value)
    if problem is not None:
        raise PydanticCustomError("arn_glob_impossible",
                                  "no ARN authsvc verifies can match {value}: {problem}",
                                  {"value": repr(value), "problem": problem})
    return ArnGlob(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Subject = Annotated[str, BeforeValidator(_subject)]
Word = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^\S+$")]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
Subjects = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
Limit = Annotated[int, Field(strict=True, ge=UNLIMITED)]
_FROZEN = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
Globs = Annotated[tuple[Annotated[Glob, BeforeValidator(_glob)], ...],
                  BeforeValidator(_one_or_many), Field(min_length=1)]
ArnGlobs = Annotated[tuple[Annotated[ArnGlob, BeforeValidator(_arn_glob)], ...],
                     BeforeValidator(_one_or_many), Field(min_length=1)]
Cidrs = Annotated[tuple[Annotated[IpNetwork, BeforeValidator(_cidr)], ...],
                  BeforeValidator(_one_or_many), Field(min_length=1)]
# UNKNOWN is what we call a type we could not read; a policy cannot grant it.
ConnectionTypeName = Literal["STANDARD", "WEBSOCKET", "MQTT", "LEAFNODE"]
ConnectionTypes = Annotated[tuple[ConnectionTypeName, ...], BeforeValidator(_one_or_many),
                            Field(min_length=1)]
ClaimName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_:./-]+$")]
RoleName = Annotated[str, Field(max_length=128, pattern=RULE_ID_PATTERN)]


class Effect(StrEnum):
    """What a matching rule does."""

    ALLOW = "allow"
    DENY = "deny"


class Defaults(BaseModel):
    """Policy-wide TTL settings."""

    model_config = _FROZEN

    ttl: Duration = timedelta(hours=1)
    max_ttl: Duration = timedelta(hours=12)

    @model_validator(mode="after")
    def _ttl_within_max(self) -> Self:
        if self.ttl > self.max_ttl:
            raise PydanticCustomError(
                "ttl_exceeds_max", "defaults.ttl {ttl} exceeds defaults.max_ttl {max_ttl}",
                {"ttl": format_duration(self.ttl), "max_ttl": format_duration(self.max_ttl)},
            )
        return self


class AwsMatch(BaseModel):
    """``match.aws``: segment-aware globs on the AWS IAM identity's ARN and account."""

    model_config = _FROZEN

    arn: ArnGlobs | None = None
    account: Globs | None = None


class Match(BaseModel):
    """Who a rule applies to. Every given condition must hold."""

    model_config = _FROZEN

    source: IdentitySource | None = None
    issuer: Text | None = None
    subject: Subjects | None = None
    subject_glob: Globs | None = None
    claims: Mapping[ClaimName, ClaimTest] | None = None
    groups: ClaimTest | None = None
    aws: AwsMatch | None = None
    source_cidrs: Cidrs | None = None
    connection_types: ConnectionTypes | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.conditions:
            raise PydanticCustomError("match_empty", "a match needs at least one condition")
        return self

    @cached_property
    def conditions(self) -> tuple[Condition, ...]:
        """The typed conditions this match stands for, in a fixed order."""
        found: list[Condition] = []
        if self.source is not None:
            found.append(SourceIs(self.source))
        if self.issuer is not None:
            found.append(IssuerIs(self.issuer))
        if self.subject is not None:
            found.append(SubjectIn(frozenset(self.subject)))
        if self.subject_glob is not None:
            found.append(SubjectGlob(self.subject_glob))
        for name, test in sorted((self.claims or {}).items()):
            found.append(ClaimHolds(name, test, key=f"claims.{name}"))
        if self.groups is not None:
            found.append(ClaimHolds(GROUPS_ATTRIBUTE, self.groups, key="groups"))
        if self.aws is not None and self.aws.arn is not None:
            found.append(AttributeGlob(AWS_ARN_ATTRIBUTE, self.aws.arn, key="aws.arn"))
        if self.aws is not None and self.aws.account is not None:
            found.append(AttributeGlob(AWS_ACCOUNT_ATTRIBUTE, self.aws.account,
                                       key="aws.account"))
        if self.source_cidrs is not None:
            found.append(SourceCidr(self.source_cidrs))
        if self.connection_types is not None:
            found.append(ConnectionTypeIn(frozenset(map(ConnectionType, self.connection_types))))
        return tuple(found)


class SubjectRules(BaseModel):
    """Allow and deny subject patterns for one direction (publish or subscribe)."""

    model_config = _FROZEN

    allow: tuple[Subject, ...] = ()
    deny: tuple[Subject, ...] = ()


class ResponsesSpec(BaseModel):
    """NATS ``resp``: publish up to ``max`` replies to a received reply subject within ``ttl``.

    Both are required and positive: nats-server silently turns 0 into 1 message / 2 minutes
    (nats-server ``client.go`` ``validateResponsePermissions``), which no reviewer should
    have to know.
    """

    model_config = _FROZEN

    max: Annotated[int, Field(strict=True, ge=1)]
    ttl: Duration


class LimitsSpec(BaseModel):
    """User limits; -1 is unlimited. nats-server 2.15 enforces none of them for callout users."""

    model_config = _FROZEN

    subs: Limit = UNLIMITED
    payload: Limit = UNLIMITED
    data: Limit = UNLIMITED


class GrantSpec(BaseModel):
    """What an allow rule grants: an account and what may be done in it."""

    model_config = _FROZEN

    account: Word
    ttl: Duration | None = None
    publish: SubjectRules = SubjectRules()
    subscribe: SubjectRules = SubjectRules()
    responses: ResponsesSpec | None = None
    limits: LimitsSpec | None = None
    connection_types: ConnectionTypes | None = None
    windows: Annotated[tuple[Window, ...], Field(min_length=1)] | None = None
    time_zone: ZoneName | None = None

    @model_validator(mode="after")
    def _zone_with_windows(self) -> Self:
        if (self.windows is None) != (self.time_zone is None):
            raise PydanticCustomError(
                "time_zone_required", "windows and time_zone go together: give both or neither")
        return self

    @cached_property
    def conditions(self) -> tuple[Condition, ...]:
        """Connection-level conditions the grant adds to its rule's match."""
        found: list[Condition] = []
        if self.connection_types is not None:
            found.append(ConnectionTypeIn(frozenset(map(ConnectionType, self.connection_types)),
                                          key="grant.connection_types"))
        if self.windows is not None and self.time_zone is not None:
            found.append(WithinWindows(self.windows, self.time_zone))
        return tuple(found)


class Guardrail(BaseModel):
    """Subject-level deny entries a guardrail rule appends to every grant it applies to."""

    model_config = _FROZEN

    publish: tuple[Subject, ...] = ()
    subscribe: tuple[Subject, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.publish and not self.subscribe:
            raise PydanticCustomError("guardrail_empty",
                                      "a guardrail needs publish or subscribe subjects")
        return self


class Rule(BaseModel):
    """One policy rule.

    Three shapes: ``allow`` with ``match`` and ``grant``; an identity-level ``deny`` with
    ``match`` (refuses the connect); a guardrail ``deny`` with ``permissions`` and optionally
    ``match`` (appends subject denies to every grant of the identities it matches, or of all).
    """

    model_config = _FROZEN

    id: Annotated[str, Field(max_length=128, pattern=RULE_ID_PATTERN)]
    description: str = ""
    effect: Effect = Effect.ALLOW
    role: RoleName | None = None
    match: Match | None = None
    grant: GrantSpec | None = None
    permissions: Guardrail | None = None

    @model_validator(mode="after")
    def _grant_fits_effect(self) -> Self:
        if self.effect is Effect.ALLOW and self.grant is None:
            raise PydanticCustomError("grant_required", "an allow rule needs a grant")
        if self.effect is Effect.DENY and self.grant is not None:
            raise PydanticCustomError("grant_forbidden", "a deny rule must not have a grant")
        if self.effect is Effect.ALLOW and self.permissions is not None:
            raise PydanticCustomError("permissions_forbidden",
                                      "permissions (a guardrail) belong on a deny rule")
        if self.effect is Effect.DENY and self.role is not None:
            raise PydanticCustomError("role_forbidden", "only allow rules carry a role")
        if self.match is None and not self.is_guardrail:
            raise PydanticCustomError("match_required",
                                      "this rule needs a match (only guardrails may omit it)")
        return self

    @property
    def is_guardrail(self) -> bool:
        """A deny rule with ``permissions``: it narrows grants instead of refusing connects."""
        return self.effect is Effect.DENY and self.permissions is not None

    @property
    def fails_closed(self) -> bool:
        """Whether a condition on a fact that cannot be read (an unparseable client host,
        an unknown connection type) holds for this rule: yes for a deny rule or guardrail,
        which must not be escaped that way; no for an allow rule, which must not grant on it.
        """
        return self.effect is Effect.DENY

    @cached_property
    def conditions(self) -> tuple[Condition, ...]:
        """The match's conditions followed by the grant's connection-level ones."""
        matched = self.match.conditions if self.match is not None else ()
        return matched + (self.grant.conditions if self.grant is not None else ())

    @cached_property
    def decision_order(self) -> tuple[tuple[Condition, ...], tuple[Condition, ...]]:
        """``conditions`` split for deciding: who the identity is (cheapest first, claim
        patterns last), then where and when it connects (source, type, windows).

        ``evaluate`` stops at the first identity condition that fails, so a token that does
        not belong to a rule never reaches its patterns; it reads every connection
        condition of a rule the identity fits, to tell ``connection_not_allowed`` and
        ``outside_connect_window`` from ``no_matching_rule``.
        """
        connection = tuple(c for c in self.conditions if c.key in CONNECTION_KEYS)
        identity = [c for c in self.conditions if c.key not in CONNECTION_KEYS]
        identity.sort(key=lambda c: isinstance(c, ClaimHolds) and c.test.pattern is not None)
        return tuple(identity), connection


class PolicyDocument(BaseModel):
    """One policy file as written. The loader composes documents into a ``Policy``."""

    model_config = _FROZEN

    api_version: Literal["authsvc/v1"] = Field(alias="apiVersion")
    kind: Literal["Policy"]
    defaults: Defaults | None = None
    rules: tuple[Rule, ...] = ()


class Policy(BaseModel):
    """The effective policy: every document's rules, one ``Defaults``, and where it came from.

    ``revision`` is the SHA-256 (hex) of the loaded source bytes (see ``load.revision_of``) and
    belongs in every decision record; ``sources`` names the files in load order.
    """

    model_config = _FROZEN

    defaults: Defaults = Defaults()
    rules: tuple[Rule, ...] = ()
    revision: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sources: tuple[str, ...] = ()
    git_revision: str = ""  # commit of the files, "+dirty" if changed; "" outside git
    _index: RuleIndex | None = PrivateAttr(default=None)
    # Merged grants by (allow rule ids, guardrail ids): the merge depends on nothing else,
    # and the same few combinations recur on every connect. Bounded; see merged_grant().
    _merged: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = PrivateAttr(
        default_factory=dict)

    def memo(self, key: tuple[tuple[str, ...], tuple[str, ...]], build: Callable[[], Any]
             ) -> Any:
        """``build()`` once per ``key`` for this policy (at most 4,096 keys kept)."""
        cache = self._merged
        found = cache.get(key)
        if found is None:
            found = build()
            if len(cache) >= 4096:
                cache.clear()
            cache[key] = found
        return found

    def candidates(self, identity: Identity) -> tuple[Rule, ...]:
        """The rules that could match ``identity`` (see ``policy.index``), in policy order."""
        index = self._index
        if index is None or index.rules is not self.rules:  # built lazily; model_copy-safe
            index = self._index = RuleIndex(self.rules)
        return index.candidates(identity)

    def adopt_index(self, index: RuleIndex) -> None:
        """Use ``index``, built in steps for exactly these rules, from now on."""
        if index.rules is not self.rules or not index.complete:
            raise ValueError("the index is not complete for this policy's rules")
        self._index = index

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise PydanticCustomError("rule_id_duplicate", "duplicate rule id {id}",
                                          {"id": repr(rule.id)})
            seen.add(rule.id)
        return self

