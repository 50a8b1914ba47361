"""Candidate pairs for lint's ``account_overlap``, found through an index instead of by
comparing every pair of rules.

Two allow rules of the same role may match the same identity unless a condition tells them
apart: both name a source and the sources differ, both name an issuer and the issuers
differ, both list exact subjects and no subject is in both lists, or both list literal
``aws.arn`` values and none is in both (``lint._may_overlap`` is the definition). Comparing
all pairs is quadratic: minutes at 10k rules. Here each rule is filed, per account, under
its own values of every combination of attributes that some rule pins; a later rule looks
itself up under the combination it pins, with for each attribute its own value or
"unpinned", and takes the positions filed under other accounts. So the work follows the
number of rules plus the number of pairs found, not the square of the number of rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import product
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authsvc.policy.model import Match, Rule

# An attribute value: a pinned value, or None for "the rule does not pin it".
Value = str | None
# A bucket key: which attributes are keyed (bit mask), the role, and per attribute the keyed
# value (None in a keyed place: unpinned; in a place the mask leaves out: not keyed).
_Key = tuple[int, str | None, tuple[Value, ...]]


def literal_arns(match: Match) -> frozenset[str] | None:
    """The ARNs ``match.aws.arn`` admits when they are all literal (an AWS identity has one
    ARN); ``None`` when it names none or uses a wildcard."""
    arns = match.aws.arn if match.aws is not None else None
    if arns is None or not all(glob.is_literal for glob in arns):
        return None
    return frozenset(glob.pattern for glob in arns)


def attributes(rule: Rule) -> tuple[tuple[Value, ...], ...]:
    """Per attribute (source, issuer, exact subjects, literal ARNs), the values ``rule`` pins:
    one or more values, or ``(None,)`` when it leaves the attribute open."""
    match = rule.match
    assert match is not None
    arns = literal_arns(match)
    return (
        (match.source.value,) if match.source is not None else (None,),
        (match.issuer,) if match.issuer is not None else (None,),
        tuple(sorted(set(match.subject))) if match.subject is not None else (None,),
        tuple(sorted(arns)) if arns is not None else (None,),
    )


def account_overlap_candidates(rules: Sequence[Rule]) -> list[tuple[int, int]]:
    """``(i, j)``, ``i < j``, for allow rules ``rules[i]`` and ``rules[j]`` (each with a match
    and a grant) of the same role and different accounts whose source, issuer, subjects and
    ARNs do not tell them apart; in ``(i, j)`` order, as ``itertools.combinations`` would give."""
    found = [attributes(rule) for rule in rules]
    # A rule is looked up under the attributes it pins: filing under other subsets is waste.
    masks = sorted({_pinned(values) for values in found})
    buckets: dict[_Key, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    pairs: list[tuple[int, int]] = []
    for position, (rule, values) in enumerate(zip(rules, found, strict=True)):
        assert rule.grant is not None
        account = rule.grant.account
        earlier: set[int] = set()
        for key in _lookups(rule.role, values):
            for other, positions in buckets.get(key, {}).items():
                if other != account:
                    earlier.update(positions)
        pairs.extend((first, position) for first in earlier)
        for key in _filings(rule.role, values, masks):
            buckets[key][account].append(position)
    pairs.sort()
    return pairs


def _pinned(values: tuple[tuple[Value, ...], ...]) -> int:
    return sum(1 << bit for bit, vals in enumerate(values) if vals != (None,))


def _filings(role: str | None, values: tuple[tuple[Value, ...], ...], masks: Sequence[int]
             ) -> Iterator[_Key]:
    """The buckets a rule is filed in: for each subset of attributes in ``masks``, its own
    values."""
    for mask in masks:
        keyed = [vals if mask >> bit & 1 else (None,) for bit, vals in enumerate(values)]
        for key in product(*keyed):
            yield mask, role, key


def _lookups(role: str | None, values: tuple[tuple[Value, ...], ...]) -> Iterator[_Key]:
    """The buckets holding the rules a rule with ``values`` cannot be told apart from: keyed
    on the attributes it pins, each with one of its values or None (unpinned)."""
    mask = _pinned(values)
    keyed = [(*vals, None) if mask >> bit & 1 else (None,)
             for bit, vals in enumerate(values)]
    for key in product(*keyed):
        yield mask, role, key
