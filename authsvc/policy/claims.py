"""Typed conditions on one identity claim (``Identity.attributes``), as written under
``match.claims.<name>``.

Every operator is false when the claim is absent, except ``present: false``. This refuses the
IAM traps where ``ForAllValues`` is vacuously true for a missing key and ``...IfExists`` passes
(AWS IAM condition operators documentation). Comparisons are type-strict:
``equals: true`` never matches the integer ``1`` or the string ``"true"``.

How a list claim (``groups``, ``aud``, a ``strings`` claim) is read depends on which way the
rule fails safe. For an allow rule, ``equals``/``in`` compare the whole value (so never a
list), ``pattern`` must fit every value, and ``contains_*`` read lists only: an allow grants
nothing on a doubtful reading. For a deny rule or guardrail (``fail_closed``), the test holds
when any single value passes: ``equals``/``in`` mean membership, ``pattern`` any value, and a
lone string counts as a one-value list for ``contains_*``; otherwise one extra group, or a
claim the IdP sends as a list, would slip past the deny.

``pattern`` runs on the ``regex`` module with a time limit per match (``PATTERN_TIMEOUT``):
claim values come from the client's IdP, and a backtracking pattern such as
``([a-z0-9]+-?)+`` took 9.6 s on a 27-character branch name chosen by anyone who can run a
GitHub workflow. A match that runs out of time is undecided, and an undecided test does
not hold for an allow rule and holds for a deny rule.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from typing import Annotated, Self

import regex
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from authsvc.domain import AttributeValue

Scalar = StrictStr | StrictInt | StrictBool
Names = Annotated[tuple[StrictStr, ...], Field(min_length=1, max_length=1024)]
# A claim pattern is matched with fullmatch; the cap keeps reviewers (and the regex engine)
# away from pathological expressions.
MAX_PATTERN_CHARS = 512
PATTERN_TIMEOUT = 0.02  # seconds per value


class Undecided(Exception):
    """A pattern ran out of time on a value."""


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled as policies read it (``regex``, version 0: ``re``'s syntax)."""
    return regex.compile(pattern, flags=regex.VERSION0)


# (pattern, value) pairs that ran out of time, most recent last: a client reconnecting with
# the same token would otherwise cost the full time limit of the event loop every time.
_UNDECIDED: OrderedDict[tuple[str, str], None] = OrderedDict()
_UNDECIDED_MAX = 1024


def _fullmatch(pattern: str, value: str) -> bool:
    key = (pattern, value)
    if key in _UNDECIDED:
        _UNDECIDED.move_to_end(key)
        raise Undecided(pattern)
    try:
        return compiled(pattern).fullmatch(value, timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        _UNDECIDED[key] = None
        if len(_UNDECIDED) > _UNDECIDED_MAX:
            _UNDECIDED.popitem(last=False)
        raise Undecided(pattern) from None


# What the regex module reads differently from re in its version 0: a fuzzy-match
# constraint after an item (x{e<=1}, which widens an allow) and POSIX classes ([[:alpha:]]).
# re would read both as literal text; neither is what a reviewer of re syntax expects.
_BRACE = re.compile(r"(?<!\\)\{(?!\d*,?\d*\})")
_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")


def _not_re(pattern: str) -> str | None:
    """Why ``pattern`` would not mean under ``regex`` what it means under ``re``."""
    if _BRACE.search(pattern):
        return "a { that is not a repeat count {m,n}; write \\{ for a literal brace"
    if _POSIX_CLASS.search(pattern):
        return "POSIX classes such as [:alpha:] are not supported; write [a-zA-Z]"
    return None


def _fits(pattern: str, value: AttributeValue, any_value: bool) -> bool:
    """A string claim matches ``pattern`` whole; a list claim when it has values and every
    one does (what ``{{each claims.NAME}}`` needs), or with ``any_value`` when one does; an
    int or bool claim never. Raises ``Undecided``."""
    if isinstance(value, str):
        return _fullmatch(pattern, value)
    if isinstance(value, tuple):
        if any_value:
            return any(_fullmatch(pattern, item) for item in value)
        return bool(value) and all(_fullmatch(pattern, item) for item in value)
    return False


def _same(expected: Scalar, value: AttributeValue) -> bool:
    # bool is a subclass of int in Python: compare types first so true != 1.
    return type(expected) is type(value) and expected == value


def _any_same(expected: tuple[Scalar, ...], values: tuple[AttributeValue, ...]) -> bool:
    """Whether some value is one of ``expected`` (type-strict, see ``_same``); a plain loop,
    as this runs for every claim condition of a connect."""
    for value in values:
        for item in expected:
            if _same(item, value):
                return True
    return False


def _values(value: AttributeValue, any_value: bool) -> tuple[AttributeValue, ...]:
    """What ``equals``/``in`` compare: the value itself, or with ``any_value`` each value of a
    list."""
    if any_value and isinstance(value, tuple):
        return value
    return (value,)


class ClaimTest(BaseModel):
    """One or more operators on a single claim; all of the given ones must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    equals: Scalar | None = None
    one_of: Annotated[tuple[Scalar, ...], Field(min_length=1)] | None = Field(None, alias="in")
    contains_any: Names | None = None
    contains_all: Names | None = None
    present: StrictBool | None = None
    pattern: Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)] | None = None

    @model_validator(mode="after")
    def _one_operator_at_least(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "claim_test_empty",
                "a claim condition needs an operator (equals, in, contains_any, contains_all, "
                "present or pattern)")
        if self.present is False and len(self.model_fields_set) > 1:
            raise PydanticCustomError(
                "claim_test_contradiction",
                "present: false cannot be combined with another operator on the same claim")
        if self.pattern is not None:
            problem = _not_re(self.pattern)
            try:
                if problem is None:
                    re.compile(self.pattern)  # first: re refuses what only regex would take
                    compiled(self.pattern)
            except (regex.error, re.error, ValueError) as exc:
                problem = str(exc)
            if problem is not None:
                raise PydanticCustomError("pattern_invalid", "invalid pattern: {problem}",
                                          {"problem": problem})
        return self

    def holds(self, value: AttributeValue | None, *, fail_closed: bool = False) -> bool:
        """Whether the claim ``value`` (``None`` when absent) satisfies every given operator.

        ``fail_closed`` (deny rules and guardrails) reads a list as "any value passes" and
        an undecided pattern as holding; otherwise as "the whole value passes" and not
        holding (module docstring).
        """
        if value is None:
            return self.present is False
        if self.present is False:
            return False
        values = _values(value, fail_closed)
        # contains_* read lists; with fail_closed a lone string is a one-value list.
        listed = value if isinstance(value, tuple) else (value,) if fail_closed else None
        # One early return per operator: this runs for every claim condition of a connect.
        if self.equals is not None and not _any_same((self.equals,), values):
            return False
        if self.one_of is not None and not _any_same(self.one_of, values):
            return False
        if self.contains_any is not None and (
                listed is None or set(self.contains_any).isdisjoint(listed)):
            return False
        if self.contains_all is not None and (
                listed is None or not set(self.contains_all).issubset(listed)):
            return False
        if self.pattern is None:
            return True
        try:
            return _fits(self.pattern, value, fail_closed)
        except Undecided:
            return fail_closed
