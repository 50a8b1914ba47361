"""Typed conditions on one identity claim (``Identity.attributes``), as written under
``match.claims.<name>``.

Every operator is false when the claim is absent, except ``present: false``. This refuses the
IAM traps where ``ForAllValues`` is vacuously true for a missing key and ``...IfExists`` passes
(AWS IAM condition operators documentation). Comparisons are type-strict:
``equals: true`` never matches the integer ``1`` or the string ``"true"``, and the set
operators only read list claims. ``pattern`` reads a string, or every value of a list.
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from authsvc.domain import AttributeValue

Scalar = StrictStr | StrictInt | StrictBool
Names = Annotated[tuple[StrictStr, ...], Field(min_length=1, max_length=1024)]
# A claim pattern is matched with re.fullmatch; the cap keeps reviewers (and the regex engine)
# away from pathological expressions.
MAX_PATTERN_CHARS = 512


def _fits(pattern: str, value: AttributeValue) -> bool:
    """A string claim matches ``pattern`` whole; a list claim when it has values and every
    one does (what ``{{each claims.NAME}}`` needs); an int or bool claim never."""
    if isinstance(value, str):
        return re.fullmatch(pattern, value) is not None
    if isinstance(value, tuple):
        return bool(value) and all(re.fullmatch(pattern, item) is not None for item in value)
    return False


def _same(expected: Scalar, value: AttributeValue) -> bool:
    # bool is a subclass of int in Python: compare types first so true != 1.
    return type(expected) is type(value) and expected == value


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
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise PydanticCustomError("pattern_invalid", "invalid pattern: {problem}",
                                          {"problem": str(exc)}) from exc
        return self

    def holds(self, value: AttributeValue | None) -> bool:
        """Whether the claim ``value`` (``None`` when absent) satisfies every given operator."""
        if value is None:
            return self.present is False
        if self.present is False:
            return False
        checks = (
            self.equals is None or _same(self.equals, value),
            self.one_of is None or any(_same(item, value) for item in self.one_of),
            self.contains_any is None or (
                isinstance(value, tuple) and not set(self.contains_any).isdisjoint(value)),
            self.contains_all is None or (
                isinstance(value, tuple) and set(self.contains_all).issubset(value)),
            self.pattern is None or _fits(self.pattern, value),
        )
        return all(checks)
