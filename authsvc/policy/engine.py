"""Policy evaluation: (identity, connect, policy, now) -> Decision. Pure; no I/O, no clock.

Semantics (Cedar/IAM style, reference policy-and-audit.md A3.1):

1. Default deny: no matching rule -> ``Deny(NO_MATCHING_RULE)``.
2. Any matching ``deny`` rule wins, wherever it sits -> ``Deny(EXPLICIT_DENY)`` naming them all.
3. Matching ``allow`` rules must all name one account; otherwise ``Deny(ACCOUNT_AMBIGUOUS)``.
   We never pick an account by file order.
4. Otherwise their grants merge into one ``Grant`` (see ``merge``) -> ``Allow``.

Rule order has no meaning anywhere. ``explain`` returns the same decision with a per-rule trace;
``evaluate`` is ``explain(...).decision`` so tools and the service share one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from authsvc.domain import Allow, ConnectRequest, Decision, Deny, DenyReason, Identity
from authsvc.policy.matchers import Facts
from authsvc.policy.merge import merge_grants
from authsvc.policy.model import Effect, GrantSpec, Policy, Rule
from authsvc.policy.trace import Evaluation, RuleTrace


def evaluate(
    identity: Identity, request: ConnectRequest, policy: Policy, now: datetime
) -> Decision:
    """Decide what ``identity`` may do on this connect under ``policy`` at ``now``."""
    return explain(identity, request, policy, now).decision


def explain(
    identity: Identity, request: ConnectRequest, policy: Policy, now: datetime
) -> Evaluation:
    """Like ``evaluate``, but also return which rules matched and which conditions failed.

    ``now`` reaches every condition through ``Facts``; none reads it yet (connect-time windows
    will).
    """
    facts = Facts(identity=identity, request=request, now=now)
    traces = tuple(_trace(rule, facts) for rule in policy.rules)
    matched = [rule for rule, trace in zip(policy.rules, traces, strict=True) if trace.matched]
    return Evaluation(decision=_decide(matched, policy), rules=traces, revision=policy.revision)


def _trace(rule: Rule, facts: Facts) -> RuleTrace:
    # Evaluate every condition rather than stopping at the first failure: explain output
    # lists all failing conditions, and v1 conditions are cheap and side-effect free.
    failed = tuple(c.key for c in rule.match.conditions if not c.holds(facts))
    return RuleTrace(rule_id=rule.id, effect=rule.effect, failed=failed)


def _decide(matched: Sequence[Rule], policy: Policy) -> Decision:
    denying = sorted(rule.id for rule in matched if rule.effect is Effect.DENY)
    if denying:
        return Deny(DenyReason.EXPLICIT_DENY, detail=f"denied by rule(s) {', '.join(denying)}",
                    rule_ids=tuple(denying))
    allowing = [(rule.id, rule.grant) for rule in matched
                if rule.effect is Effect.ALLOW and rule.grant is not None]
    if not allowing:
        return Deny(DenyReason.NO_MATCHING_RULE, detail="no rule matched")
    rule_ids = [rule_id for rule_id, _ in allowing]
    grants: list[GrantSpec] = [grant for _, grant in allowing]
    accounts = sorted({grant.account for grant in grants})
    if len(accounts) > 1:
        return Deny(DenyReason.ACCOUNT_AMBIGUOUS,
                    detail=f"matching rules name accounts {', '.join(accounts)}",
                    rule_ids=tuple(sorted(rule_ids)))
    return Allow(merge_grants(rule_ids, grants, policy.defaults))
