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

from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from authsvc.domain import UNLIMITED, IdentitySource
from authsvc.policy.durations import format_duration, parse_duration
from authsvc.policy.matchers import Condition, IssuerIs, SourceIs, SubjectIn
from authsvc.policy.subjects import validate_subject

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
    problem = validate_subject(value)
    if problem is not None:
        raise PydanticCustomError(
            "subject_invalid", "invalid subject {subject}: {problem}",
            {"subject": repr(value), "problem": problem},
        )
    return value


def _one_or_many(value: object) -> object:
    # A lone scalar means a one-element list; the element type then reports a non-string.
    return value if isinstance(value, list | tuple) or value is None else [value]


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Subject = Annotated[str, BeforeValidator(_subject)]
Word = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^\S+$")]
Text = Annotated[str, Field(min_length=1, max_length=4096)]
Subjects = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
Limit = Annotated[int, Field(strict=True, ge=UNLIMITED)]
_FROZEN = ConfigDict(frozen=True, extra="forbid")


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


class Match(BaseModel):
    """Who a rule applies to. Every given condition must hold."""

    model_config = _FROZEN

    source: IdentitySource | None = None
    issuer: Text | None = None
    subject: Subjects | None = None

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
        return tuple(found)


class SubjectRules(BaseModel):
    """Allow and deny subject patterns for one direction (publish or subscribe)."""

    model_config = _FROZEN

    allow: tuple[Subject, ...] = ()
    deny: tuple[Subject, ...] = ()


class ResponsesSpec(BaseModel):
    """NATS ``resp``: publish up to ``max`` replies to a received reply subject within ``ttl``.

    Both are required and positive: nats-server silently turns 0 into 1 message / 2 minutes
    (reference A1, ``validateResponsePermissions``), which no reviewer should have to know.
    """

    model_config = _FROZEN

    max: Annotated[int, Field(strict=True, ge=1)]
    ttl: Duration


class LimitsSpec(BaseModel):
    """User limits; -1 is unlimited. The server never reads ``data`` (reference A1.1)."""

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


class Rule(BaseModel):
    """One policy rule: a match and, for ``allow``, a grant."""

    model_config = _FROZEN

    id: Annotated[str, Field(max_length=128, pattern=RULE_ID_PATTERN)]
    description: str = ""
    effect: Effect = Effect.ALLOW
    match: Match
    grant: GrantSpec | None = None

    @model_validator(mode="after")
    def _grant_fits_effect(self) -> Self:
        if self.effect is Effect.ALLOW and self.grant is None:
            raise PydanticCustomError("grant_required", "an allow rule needs a grant")
        if self.effect is Effect.DENY and self.grant is not None:
            raise PydanticCustomError("grant_forbidden", "a deny rule must not have a grant")
        return self


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

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise PydanticCustomError("rule_id_duplicate", "duplicate rule id {id}",
                                          {"id": repr(rule.id)})
            seen.add(rule.id)
        return self

