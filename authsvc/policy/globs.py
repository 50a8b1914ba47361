"""Segment-aware globs for identifiers such as AWS ARNs, OIDC subjects and account ids.

``*`` matches any run of characters (also none) inside one segment: it never crosses ``:`` or
``/``. ``**`` matches anything, separators included, and must be written on purpose. Every
other character is literal (``?``, ``[`` and ``]`` included); matching is case-sensitive and
anchored at both ends.

Why: Vault's ``bound_claims_type: glob`` lets ``*`` span ``:`` and ``/``, so
``arn:aws:iam::1111:role/ci-*`` also matches ``role/ci-x/../admin``-style paths and other
accounts' ARNs. AWS IAM ``ArnLike`` also
matches per ARN component, and so does ``ArnGlob``: an ARN's first five fields are matched
one by one, so no wildcard, ``**`` included, can reach across the account field (IAM user
paths may contain ``:``).

Matching takes time linear in the value whatever the glob. Most globs run as a regular
expression: a ``*`` followed by a separator (or the end) can be satisfied in one way only,
and one other wildcard backtracks at most once per character. A glob with two or more
wildcards that can each end anywhere (``**``, or ``*`` before a literal such as ``-``) runs
as a set of positions advanced character by character instead: as a backtracking regex,
``**-**-**-admin`` took 70 s on a 512-character ARN path a client can choose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

SEGMENT_SEPARATORS = ":/"
_ONE_SEGMENT = f"[^{re.escape(SEGMENT_SEPARATORS)}]*"
_ANY, _SEGMENT = "**", "*"


def _tokens(pattern: str) -> list[str]:
    """Literal characters and wildcards; a run of wildcards is one (``**`` if it holds one)."""
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        token = _ANY if pattern.startswith(_ANY, index) else pattern[index]
        index += len(token)
        if token in (_ANY, _SEGMENT) and tokens and tokens[-1] in (_ANY, _SEGMENT):
            tokens[-1] = _ANY if _ANY in (token, tokens[-1]) else _SEGMENT
            continue
        tokens.append(token)
    return tokens


def _ambiguous(tokens: list[str]) -> int:
    """Wildcards a backtracking regex may end at more than one place."""
    return sum(token == _ANY or (token == _SEGMENT and tokens[index + 1:index + 2] not in (
        [], [":"], ["/"])) for index, token in enumerate(tokens))


class _Positions:
    """An NFA over the glob's tokens, its states one bit each of an int.

    Bit ``j`` set: the first ``j`` tokens have matched the value read so far. A literal moves
    its bit on when the character is that literal; a wildcard keeps its bit while the
    character is one it may consume, and, matching nothing too, lends it to the next token.
    """

    def __init__(self, tokens: list[str]) -> None:
        self._literal: dict[str, int] = {}
        self._any = self._segment = 0
        for index, token in enumerate(tokens):
            bit = 1 << index
            if token == _ANY:
                self._any |= bit
            elif token == _SEGMENT:
                self._segment |= bit
            else:
                self._literal[token] = self._literal.get(token, 0) | bit
        self._stars = self._any | self._segment
        self._accept = 1 << len(tokens)

    def _closed(self, state: int) -> int:
        return state | ((state & self._stars) << 1)  # no two wildcards are adjacent

    def matches(self, value: str) -> bool:
        state = self._closed(1)
        literal, any_, segment = self._literal, self._any, self._segment
        for char in value:
            keep = any_ if char in SEGMENT_SEPARATORS else any_ | segment
            state = ((state & literal.get(char, 0)) << 1) | (state & keep)
            if not state:
                return False
            state = self._closed(state)
        return bool(state & self._accept)


@dataclass(frozen=True)
class Glob:
    """One compiled segment-aware glob."""

    pattern: str

    @cached_property
    def _matcher(self) -> re.Pattern[str] | _Positions:
        tokens = _tokens(self.pattern)
        if _ambiguous(tokens) > 1:
            return _Positions(tokens)
        parts = [".*" if token == _ANY else _ONE_SEGMENT if token == _SEGMENT
                 else re.escape(token) for token in tokens]
        return re.compile("".join(parts), re.DOTALL)

    def matches(self, value: str) -> bool:
        """Whether ``value`` as a whole matches this glob."""
        matcher = self._matcher
        if isinstance(matcher, _Positions):
            return matcher.matches(value)
        return matcher.fullmatch(value) is not None

    @property
    def is_literal(self) -> bool:
        """True when the glob holds no wildcard (an exact match)."""
        return "*" not in self.pattern


# What the AWS IAM verifier's canonical ARNs look like (authsvc.identity.aws_arn): an IAM
# user (with its path), root, a role without its path (assumed-role sessions canonicalised),
# or an STS federated user.
ARN_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_RESOURCES = {"iam": ("root", "user/", "role/"), "sts": ("federated-user/",)}


@dataclass(frozen=True)
class ArnGlob(Glob):
    """A glob on a canonical caller ARN, matched field by field.

    ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``: the first five fields are compared
    one by one, each with its own glob, and the rest is the resource; so ``arn:**:iam::1111``
    cannot match an ARN of another account whose user path holds ``:iam::1111``.
    """

    @cached_property
    def _fields(self) -> tuple[Glob, ...]:
        return tuple(Glob(field) for field in self.pattern.split(":", 5))

    def matches(self, value: str) -> bool:
        fields = value.split(":", 5)
        return len(fields) == len(self._fields) == 6 and all(
            glob.matches(field) for glob, field in zip(self._fields, fields, strict=True))


def arn_glob_problem(pattern: str) -> str | None:
    """Why no ARN the AWS IAM verifier produces could match ``pattern``; None if one can.

    Such a glob is never what its author meant: in an allow rule it admits no one, in a
    deny rule or guardrail it silently protects nothing. Only literal parts are judged.
    """
    fields = pattern.split(":", 5)
    if len(fields) != 6:
        return "an ARN glob has six fields: arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE"
    head, partition, service, region, account = (Glob(f) for f in fields[:5])
    if not head.matches("arn"):
        return "an ARN starts with arn:"
    if not any(partition.matches(name) for name in ARN_PARTITIONS):
        return f"the partition is one of {', '.join(ARN_PARTITIONS)}"
    if not region.matches(""):
        return "IAM and STS ARNs have an empty region field (arn:aws:iam::ACCOUNT:...)"
    if account.is_literal and not (len(fields[4]) == 12 and fields[4].isdigit()):
        return "the account field is 12 digits"
    literal = fields[5].split("*", 1)[0]
    if literal.startswith("assumed-role/"):
        return ("a role session is matched as its role: write "
                "arn:PARTITION:iam::ACCOUNT:role/NAME (the session name is never part of it)")
    if literal.startswith("role/") and "/" in fields[5][len("role/"):].replace("**", ""):
        return ("a role is matched without its path (the STS answer does not carry it): "
                "write role/NAME")
    services = [name for name in _RESOURCES if service.matches(name)]
    if not services:
        return "the service is iam (users, roles, root) or sts (federated users)"
    starts = [start for name in services for start in _RESOURCES[name]]
    if not any(start.startswith(literal) or literal.startswith(start) for start in starts):
        return ("the resource is root, user/[PATH/]NAME or role/NAME (service iam), or "
                "federated-user/NAME (service sts)")
    return None
