"""A rule index so decision time does not grow with the number of rules.

Each rule is filed under the most specific key its ``match`` pins down exactly: every exact
``subject``, else every literal ``aws.arn``, else its ``issuer``, else its ``source``; rules
with none of these (and guardrails without a match) are always candidates. A rule left out of
``candidates(identity)`` has a condition that cannot hold for that identity, so skipping it
cannot change a decision; ``tests/unit/policy`` checks the indexed decision against a full
scan. Candidates keep policy order, so traces read in file order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from authsvc.domain import Identity
from authsvc.policy.matchers import AWS_ARN_ATTRIBUTE

if TYPE_CHECKING:  # model imports this module to index a Policy
    from authsvc.policy.model import Rule


class RuleIndex:
    """Rules bucketed by subject, ARN, issuer and source. Built once per loaded policy.

    ``RuleIndex(rules)`` files every rule. A reload on the event loop builds it in steps
    instead (``filing=False``, then ``file_next`` until ``complete``), so that filing 10k
    rules (tens of milliseconds) never holds up a request.
    """

    def __init__(self, rules: Sequence[Rule], *, filing: bool = True) -> None:
        self.rules = rules
        self._by_subject: dict[str, list[int]] = defaultdict(list)
        self._by_arn: dict[str, list[int]] = defaultdict(list)
        self._by_issuer: dict[str, list[int]] = defaultdict(list)
        self._by_source: dict[str, list[int]] = defaultdict(list)
        self._always: list[int] = []
        self._filed = 0
        if filing:
            self.file_next(len(rules))

    @property
    def complete(self) -> bool:
        """Every rule is filed; only then may ``candidates`` be asked."""
        return self._filed == len(self.rules)

    def file_next(self, count: int) -> None:
        """File the next ``count`` rules (fewer if fewer are left)."""
        stop = min(self._filed + count, len(self.rules))
        for position in range(self._filed, stop):
            self._file(position, self.rules[position])
        self._filed = stop

    def _file(self, position: int, rule: Rule) -> None:
        match = rule.match
        arns = match.aws.arn if match is not None and match.aws is not None else None
        if match is None:
            self._always.append(position)
        elif match.subject is not None:
            for subject in set(match.subject):
                self._by_subject[subject].append(position)
        elif arns is not None and all(glob.is_literal for glob in arns):
            for glob in {glob.pattern for glob in arns}:
                self._by_arn[glob].append(position)
        elif match.issuer is not None:
            self._by_issuer[match.issuer].append(position)
        elif match.source is not None:
            self._by_source[match.source.value].append(position)
        else:
            self._always.append(position)

    def candidates(self, identity: Identity) -> tuple[Rule, ...]:
        """The rules that could match ``identity``, in policy order."""
        arn = identity.attributes.get(AWS_ARN_ATTRIBUTE)
        positions = [
            *self._always,
            *self._by_subject.get(identity.subject, ()),
            *(self._by_arn.get(arn, ()) if isinstance(arn, str) else ()),
            *self._by_issuer.get(identity.issuer, ()),
            *self._by_source.get(identity.source.value, ()),
        ]
        positions.sort()
        return tuple(self.rules[position] for position in positions)
