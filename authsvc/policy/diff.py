"""What changes between two policies: rules added, removed or changed, and for each known
identity (from test cases) the decision and the subjects it gains or loses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from authsvc.domain import Allow, Decision
from authsvc.policy.cases import Case
from authsvc.policy.engine import evaluate
from authsvc.policy.model import Policy


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """How one case's identity fares under the new policy compared with the old one."""

    case: str
    before: str
    after: str
    gained: tuple[str, ...]
    lost: tuple[str, ...]


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


def diff(old: Policy, new: Policy, cases: Sequence[Case]) -> PolicyDiff:
    """Compare ``old`` with ``new``, deciding every case under both."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    changed = sorted(rule_id for rule_id in before.keys() & after.keys()
                     if before[rule_id] != after[rule_id])
    changes = []
    for case in cases:
        identity, request = case.identity.build(case.now), case.connection.build(case.now)
        change = _change(case.name, evaluate(identity, request, old, case.now),
                         evaluate(identity, request, new, case.now))
        if change is not None:
            changes.append(change)
    return PolicyDiff(added=tuple(sorted(after.keys() - before.keys())),
                      removed=tuple(sorted(before.keys() - after.keys())),
                      changed=tuple(changed), identities=tuple(changes))


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


def _change(name: str, old: Decision, new: Decision) -> IdentityChange | None:
    gained = sorted(access(new) - access(old))
    lost = sorted(access(old) - access(new))
    if summary(old) == summary(new) and not gained and not lost:
        return None
    return IdentityChange(case=name, before=summary(old), after=summary(new),
                          gained=tuple(gained), lost=tuple(lost))
