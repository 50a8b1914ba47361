"""Segment-aware globs for identifiers such as AWS ARNs, OIDC subjects and account ids.

``*`` matches any run of characters (also none) inside one segment: it never crosses ``:`` or
``/``. ``**`` matches anything, separators included, and must be written on purpose. Every
other character is literal (``?``, ``[`` and ``]`` included); matching is case-sensitive and
anchored at both ends.

Why: Vault's ``bound_claims_type: glob`` lets ``*`` span ``:`` and ``/``, so
``arn:aws:iam::1111:role/ci-*`` also matches ``role/ci-x/../admin``-style paths and other
accounts' ARNs. AWS IAM ``ArnLike`` also
matches per ARN component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

SEGMENT_SEPARATORS = ":/"
_ONE_SEGMENT = f"[^{re.escape(SEGMENT_SEPARATORS)}]*"


@dataclass(frozen=True)
class Glob:
    """One compiled segment-aware glob."""

    pattern: str

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        parts: list[str] = []
        index = 0
        while index < len(self.pattern):
            if self.pattern.startswith("**", index):
                parts.append(".*")
                index += 2
            elif self.pattern[index] == "*":
                parts.append(_ONE_SEGMENT)
                index += 1
            else:
                parts.append(re.escape(self.pattern[index]))
                index += 1
        return re.compile("".join(parts), re.DOTALL)

    def matches(self, value: str) -> bool:
        """Whether ``value`` as a whole matches this glob."""
        return self._regex.fullmatch(value) is not None

    @property
    def is_literal(self) -> bool:
        """True when the glob holds no wildcard (an exact match)."""
        return "*" not in self.pattern
