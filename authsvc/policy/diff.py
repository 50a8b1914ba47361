"""What changes between two policies: rules added, removed or changed, and for each known
identity (from test cases, and optionally identities seen in the audit log) the decision and
the subjects it gains or loses.

An identity rebuilt from the audit log may lack what a rule reads (``gaps``). Such rules are
not silently taken as "no match": the identity's entry names them under each policy, and it
is listed whenever its decision changes or one of those rules is added, removed or changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from authsvc.domain import Allow, ConnectRequest, Decision, Identity, IdentitySource
from authsvc.policy.cases import Case
from authsvc.policy.engine import evaluate
from authsvc.policy.gaps import Gaps, Undecided, undecided
from authsvc.policy.matchers import AWS_ARN_ATTRIBUTE, Facts
from authsvc.policy.model import Policy, Rule


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """How one identity fares under the new policy compared with the old one.

    ``undecided_before`` / ``undecided_after``: rules of the old / new policy whose outcome for
    this identity depends on facts its source does not hold; ``before`` and ``after`` then say
    "not reconstructable" and name them, since the decision shown takes them as not matching.
    """

    case: str
    before: str
    after: str
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    undecided_before: tuple[Undecided, ...] = ()
    undecided_after: tuple[Undecided, ...] = ()
    principal: str = ""


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """Rule-level and identity-level differences."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    identities: tuple[IdentityChange, ...]

    @property
    def empty(self) -> bool:
        """Nothing differs."""
        return not (self.added or self.removed or self.changed or self.identities)


@dataclass(frozen=True, slots=True)
class Subject:
    """An identity and connection to decide under both policies, e.g. from the audit log;
    ``gaps`` is what its source did not hold (nothing, for a test case)."""

    name: str
    identity: Identity
    request: ConnectRequest
    now: datetime
    gaps: Gaps = field(default_factory=Gaps)


def diff(old: Policy, new: Policy, cases: Sequence[Case],
         seen: Sequence[Subject] = ()) -> PolicyDiff:
    """Compare ``old`` with ``new``, deciding every case (and every ``seen`` identity)
    under both."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    added = tuple(sorted(after.keys() - before.keys()))
    removed = tuple(sorted(before.keys() - after.keys()))
    changed = tuple(sorted(rule_id for rule_id in before.keys() & after.keys()
                           if before[rule_id] != after[rule_id]))
    differing = {*added, *removed, *changed}
    subjects = [Subject(case.name, case.identity.build(case.now),
                        case.connection.build(case.now), case.now) for case in cases]
    sides = (_Side(old), _Side(new))
    changes = []
    for subject in [*subjects, *seen]:
        change = _change(subject, *sides, differing)
        if change is not None:
            changes.append(change)
    return PolicyDiff(added=added, removed=removed, changed=changed, identities=tuple(changes))


def summary(decision: Decision) -> str:
    """``allow APP`` or ``deny <reason>``."""
    if isinstance(decision, Allow):
        return f"allow {decision.grant.account}"
    return f"deny {decision.reason}"


def access(decision: Decision) -> frozenset[str]:
    """The grant's entries as ``pub allow x`` / ``sub deny y`` lines; empty for a deny."""
    if not isinstance(decision, Allow):
        return frozenset()
    perms = decision.grant.permissions
    return frozenset(
        f"{direction} {kind} {subject}"
        for direction, rule in (("pub", perms.pub), ("sub", perms.sub))
        for kind, subjects in (("allow", rule.allow), ("deny", rule.deny))
        for subject in subjects)


class _Side:
    """One policy, with the rules its index files under a literal ``aws.arn`` by source: a
    subject whose ARN is unknown never reaches them through ``candidates``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._by_arn: dict[IdentitySource | None, list[Rule]] = defaultdict(list)
        for rule in policy.rules:
            if rule.match is not None and rule.match.aws is not None \
                    and rule.match.aws.arn is not None:
                self._by_arn[rule.match.source].append(rule)

    def decide(self, subject: Subject) -> tuple[Decision, tuple[Undecided, ...]]:
        """The engine's decision, and the rules the subject's gaps leave undecided."""
        identity = subject.identity
        decision = evaluate(identity, subject.request, self.policy, subject.now)
        if subject.gaps.complete:
            return decision, ()
        rules = list(self.policy.candidates(identity))
        if subject.gaps.lacks(AWS_ARN_ATTRIBUTE, identity):
            listed = {id(rule) for rule in rules}
            rules += [rule for source in (None, identity.source)
                      for rule in self._by_arn.get(source, ()) if id(rule) not in listed]
        facts = Facts(identity=identity, request=subject.request, now=subject.now)
        return decision, undecided(rules, facts, subject.gaps)


def _change(subject: Subject, old: _Side, new: _Side,
            differing: set[str]) -> IdentityChange | None:
    old_decision, old_undecided = old.decide(subject)
    new_decision, new_undecided = new.decide(subject)
    gained = sorted(access(new_decision) - access(old_decision))
    lost = sorted(access(old_decision) - access(new_decision))
    moved = summary(old_decision) != summary(new_decision) or gained or lost
    touched = any(rule.rule_id in differing for rule in (*old_undecided, *new_undecided))
    if not moved and not touched:
        return None
    return IdentityChange(case=subject.name, before=_described(old_decision, old_undecided),
                          after=_described(new_decision, new_undecided), gained=tuple(gained),
                          lost=tuple(lost), undecided_before=old_undecided,
                          undecided_after=new_undecided,
                          principal=subject.identity.principal)


def _described(decision: Decision, unknown: Sequence[Undecided]) -> str:
    if not unknown:
        return summary(decision)
    rules = "; ".join(f"rule {rule}" for rule in unknown)
    return f"{summary(decision)} [not reconstructable: {rules}]"
