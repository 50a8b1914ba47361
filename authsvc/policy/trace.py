"""What evaluation saw: the decision plus, for every rule, whether it matched and why not.

``policy explain`` / ``policy test`` render this; they never re-evaluate on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.domain import Decision
from authsvc.policy.model import Effect


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule's outcome. ``failed`` lists the ``match:`` keys whose condition did not hold;
    ``missing`` the claims those conditions looked for and the identity did not have."""

    rule_id: str
    effect: Effect
    failed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    guardrail: bool = False

    @property
    def matched(self) -> bool:
        """A rule matches when none of its conditions failed."""
        return not self.failed


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision and the per-rule trace that led to it, for one policy revision."""

    decision: Decision
    rules: tuple[RuleTrace, ...]
    revision: str

    @property
    def matched_rule_ids(self) -> tuple[str, ...]:
        """Ids of every rule that matched (allow and deny), sorted."""
        return tuple(sorted(rule.rule_id for rule in self.rules if rule.matched))
