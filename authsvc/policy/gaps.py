"""Which rules cannot be decided for an identity rebuilt from incomplete facts. Pure.

``policy diff --audit`` rebuilds identities from audit records, which keep who connected and
how but not every attribute the verifier set (an OIDC token's claims and groups, an AWS
session name) nor the CONNECT ``user`` a client asked for a role with. The engine reads an
absent attribute as absent, so a rule that tests one would quietly "not match". Here such a
rule is named instead, with the keys it reads that the facts do not hold; a condition the
facts do decide and that fails still rules it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from authsvc.domain import Identity
from authsvc.policy.matchers import AttributeGlob, ClaimHolds, Condition, Facts
from authsvc.policy.model import Effect, Rule
from authsvc.policy.templates import claims_used, is_template


@dataclass(frozen=True, slots=True)
class Gaps:
    """What the source of an identity did not hold.

    ``attributes``: names the identity may have had that are missing from it; ``None`` means
    any name not in ``Identity.attributes`` (an OIDC identity's configured claims).
    ``requested_role``: the CONNECT ``user`` (``role:<name>``) is unknown.
    """

    attributes: frozenset[str] | None = frozenset()
    requested_role: bool = False

    @property
    def complete(self) -> bool:
        """Nothing is missing: every rule is decided by the engine as usual."""
        return self.attributes == frozenset() and not self.requested_role

    def lacks(self, name: str, identity: Identity) -> bool:
        """Whether attribute ``name`` of ``identity`` is unknown (not merely absent)."""
        if name in identity.attributes:
            return False
        return self.attributes is None or name in self.attributes


@dataclass(frozen=True, slots=True)
class Undecided:
    """A rule whose outcome for one identity depends on ``reads``, which the facts lack:
    ``match`` keys (``claims.role``, ``groups``, ``aws.arn``), ``{{claims.NAME}}`` in its
    subjects, or ``role`` (the client's requested role)."""

    rule_id: str
    reads: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.rule_id} reads {', '.join(self.reads)}"


def undecided(rules: Iterable[Rule], facts: Facts, gaps: Gaps) -> tuple[Undecided, ...]:
    """The rules among ``rules`` that ``facts``, lacking ``gaps``, cannot decide, in order."""
    if gaps.complete:
        return ()
    found = []
    for rule in rules:
        reads = _rule_reads(rule, facts, gaps)
        if reads:
            found.append(Undecided(rule.id, reads))
    return tuple(found)


def _rule_reads(rule: Rule, facts: Facts, gaps: Gaps) -> tuple[str, ...]:
    """The unknowns ``rule`` depends on; empty when a known condition fails or none are."""
    reads: list[str] = []
    for condition in rule.conditions:
        name = _attribute(condition)
        if name is not None and gaps.lacks(name, facts.identity):
            reads.append(condition.key)
        elif not condition.holds(facts, if_unknown=rule.fails_closed):
            return ()  # decided: this rule does not match, whatever the unknowns hold
    if rule.effect is Effect.ALLOW and rule.role is not None and gaps.requested_role:
        reads.append("role")
    reads.extend(f"{{{{claims.{name}}}}}" for name in sorted(_templated(rule))
                 if gaps.lacks(name, facts.identity) and f"claims.{name}" not in reads)
    return tuple(reads)


def _attribute(condition: Condition) -> str | None:
    """The identity attribute a condition reads, if it reads one."""
    if isinstance(condition, ClaimHolds):
        return condition.name
    if isinstance(condition, AttributeGlob):
        return condition.attribute
    return None


def _templated(rule: Rule) -> set[str]:
    """Claims the rule's grant or guardrail subjects render."""
    subjects: list[str] = []
    if rule.grant is not None:
        for rules in (rule.grant.publish, rule.grant.subscribe):
            subjects += [*rules.allow, *rules.deny]
    if rule.permissions is not None:
        subjects += [*rule.permissions.publish, *rule.permissions.subscribe]
    return {name for subject in subjects if is_template(subject)
            for name in claims_used(subject)}
