"""What changes between two policies: rules added, removed or changed, and for each known
identity (from test cases, and optionally identities seen in the audit log) the decision and
the subjects it gains or loses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from authsvc.domain import Allow, ConnectRequest, Decision, Identity
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


@dataclass(frozen=True, slots=True)
class Subject:
    """An identity and connection to decide under both policies, e.g. from the audit log."""

    name: str
    identity: Identity
    request: ConnectRequest
    now: datetime


def diff(old: Policy, new: Policy, cases: Sequence[Case],
         seen: Sequence[Subject] = ()) -> PolicyDiff:
    """Compare ``old`` with ``new``, deciding every case (and every ``seen`` identity)
    under both."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    changed = sorted(rule_id for rule_id in before.keys() & after.keys()
                     if before[rule_id] != after[rule_id])
    subjects = [Subject(case.name, case.identity.build(case.now),
                        case.connection.build(case.now), case.now) for case in cases]
    changes = []
    for subject in [*subjects, *seen]:
        change = _change(subject.name,
                         evaluate(subject.identity, subject.request, old, subject.now),
                         evaluate(subject.identity, subject.request, new, subject.now))
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
