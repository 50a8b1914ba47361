"""Policy evaluation: (identity, connect, policy, now) -> Decision. Pure; no I/O, no clock.

Semantics (Cedar/IAM style: default deny, an explicit deny wins):

1. Default deny: no matching rule -> ``Deny(NO_MATCHING_RULE)``; when the only allow rules that
   failed did so on connection facts (source address, connection type) or outside their
   connect windows, the reason says so (``CONNECTION_NOT_ALLOWED``, ``OUTSIDE_CONNECT_WINDOW``).
2. Any matching identity-level ``deny`` rule wins, wherever it sits -> ``Deny(EXPLICIT_DENY)``.
   A condition on a connection fact that cannot be read (a client host that is no IP
   address, an unknown connection type) holds for deny rules and guardrails and fails for
   allow rules (``Rule.fails_closed``): an unreadable fact never escapes a deny.
3. A client may ask for a role with CONNECT ``user: "role:<name>"``; then only allow rules
   with that ``role`` count, and none -> ``Deny(ROLE_NOT_PERMITTED)`` (Vault's role parameter).
   Without a request only allow rules without a ``role`` count: a role is granted only to
   a client that asks for it (none, but a role-tagged rule matched -> ``ROLE_REQUIRED``).
4. Matching ``allow`` rules must all name one account; otherwise ``Deny(ACCOUNT_AMBIGUOUS)``.
   We never pick an account by file order.
5. Otherwise their grants merge into one ``Grant`` (see ``merge``), every matching guardrail's
   subjects are appended to its deny lists, and the TTL is capped by the identity's expiry and
   the end of the connect window; subject templates are rendered from the identity, and any
   unsafe or missing value -> ``Deny(TEMPLATE_INVALID)``; each subscribe allow ``P.*`` gets
   the deny ``P.*.>`` that stops nats-server delivering deeper subjects to it, where nothing
   else in the grant goes deeper (``merge.with_seals``) -> else ``Allow``.

Rule order has no meaning anywhere. ``explain`` returns the same decision with a per-rule trace;
``evaluate`` is ``explain(...).decision`` so tools and the service share one code path.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from authsvc.domain import (
    Allow,
    ConnectRequest,
    Decision,
    Deny,
    DenyReason,
    Grant,
    Identity,
)
from authsvc.policy.matchers import ClaimHolds, Facts
from authsvc.policy.merge import cap_ttl, merge_grants, with_guardrails, with_seals
from authsvc.policy.model import Effect, GrantSpec, Policy, Rule
from authsvc.policy.templates import TemplateError, render_grant
from authsvc.policy.trace import Evaluation, RuleTrace
from authsvc.policy.windows import time_left

# CONNECT ``user`` prefix a client uses to ask for one role.
ROLE_PREFIX = "role:"
_CONNECTION_KEYS = frozenset({"source_cidrs", "connection_types", "grant.connection_types"})
_WINDOW_KEYS = frozenset({"grant.windows"})


def evaluate(
    identity: Identity, request: ConnectRequest, policy: Policy, now: datetime
) -> Decision:
    """Decide what ``identity`` may do on this connect under ``policy`` at ``now``."""
    return explain(identity, request, policy, now, every_rule=False).decision


def explain(
    identity: Identity, request: ConnectRequest, policy: Policy, now: datetime, *,
    every_rule: bool = True,
) -> Evaluation:
    """Like ``evaluate``, but also return which rules matched and which conditions failed.

    With ``every_rule`` the trace covers all rules; otherwise only the index's candidates
    (``policy.index``), which is what ``evaluate`` uses: the decision is the same either way.
    """
    facts = Facts(identity=identity, request=request, now=now)
    rules = policy.rules if every_rule else policy.candidates(identity)
    traces = tuple(_trace(rule, facts, complete=every_rule) for rule in rules)
    matched = [rule for rule, trace in zip(rules, traces, strict=True) if trace.matched]
    decision = _decide(matched, traces, facts, policy)
    return Evaluation(decision=decision, rules=traces, revision=policy.revision)


def refuse_forbidden(decision: Decision, forbidden: Collection[str]) -> Decision:
    """The decision ``serve`` answers with: an allow into one of the ``forbidden`` accounts
    (the callout or system account, ``account_checks``) becomes an ``account_forbidden``
    deny by the rules that granted it."""
    if isinstance(decision, Allow) and decision.grant.account in forbidden:
        return Deny(DenyReason.ACCOUNT_FORBIDDEN,
                    f"grant into {decision.grant.account!r} refused",
                    rule_ids=decision.grant.rule_ids)
    return decision


def requested_role(request: ConnectRequest) -> str | None:
    """The role a client asked for through CONNECT ``user``, if any."""
    user = request.connect.user
    return user[len(ROLE_PREFIX):] if user.startswith(ROLE_PREFIX) else None


def _trace(rule: Rule, facts: Facts, *, complete: bool = True) -> RuleTrace:
    # ``complete`` (explain) evaluates every condition, to list all that fail. Deciding
    # stops at the first failing identity condition (``Rule.decision_order``): the rule is
    # then out of the running, and its remaining conditions, claim patterns last, would
    # only cost time an attacker's token chooses.
    failed: list[str] = []
    missing: list[str] = []
    if_unknown = rule.fails_closed
    identity, connection = rule.decision_order
    for condition in rule.conditions if complete else identity:
        if not condition.holds(facts, if_unknown=if_unknown):
            failed.append(condition.key)
            if not complete:
                break
            if isinstance(condition, ClaimHolds) and condition.missing(facts):
                missing.append(condition.name)
    if not complete and not failed:
        failed = [c.key for c in connection if not c.holds(facts, if_unknown=if_unknown)]
    return RuleTrace(rule_id=rule.id, effect=rule.effect, failed=tuple(failed),
                     missing=tuple(missing), guardrail=rule.is_guardrail)


def _decide(matched: Sequence[Rule], traces: Sequence[RuleTrace], facts: Facts,
            policy: Policy) -> Decision:
    denying = sorted(r.id for r in matched if r.effect is Effect.DENY and not r.is_guardrail)
    if denying:
        return Deny(DenyReason.EXPLICIT_DENY, detail=f"denied by rule(s) {', '.join(denying)}",
                    rule_ids=tuple(denying))
    matching = [rule for rule in matched if rule.effect is Effect.ALLOW]
    role = requested_role(facts.request)
    # A role-tagged rule applies only to a client that asks for its role, and a request
    # for a role selects only that role's rules: asking can never widen a grant, and not
    # asking never brings in a role's grant.
    allowing = [rule for rule in matching if rule.role == role]
    if role is not None and not allowing:
        return Deny(DenyReason.ROLE_NOT_PERMITTED, detail=f"role {role!r} not granted")
    if not allowing and matching:
        roles = ", ".join(sorted({str(rule.role) for rule in matching}))
        return Deny(DenyReason.ROLE_REQUIRED,
                    detail=f"matching rules need a role ({roles}): connect with user "
                           "role:<name>", rule_ids=tuple(sorted(r.id for r in matching)))
    if not allowing:
        return _no_match(traces)
    rule_ids = tuple(sorted(rule.id for rule in allowing))
    grants = [_grant(rule) for rule in allowing]
    accounts = sorted({grant.account for grant in grants})
    if len(accounts) > 1:
        return Deny(DenyReason.ACCOUNT_AMBIGUOUS,
                    detail=f"matching rules name accounts {', '.join(accounts)}",
                    rule_ids=rule_ids)
    grant = _merged_grant(policy, rule_ids, grants, matched)
    try:
        grant = with_seals(render_grant(grant, facts.identity))
    except TemplateError as exc:
        # Fail the whole decision: never drop or widen an entry (templates module docstring).
        return Deny(DenyReason.TEMPLATE_INVALID, detail=str(exc), rule_ids=rule_ids)
    return Allow(cap_ttl(grant, _ttl_caps(grants, facts)))


def _merged_grant(policy: Policy, rule_ids: tuple[str, ...], grants: Sequence[GrantSpec],
                  matched: Sequence[Rule]) -> Grant:
    """Allow grants merged with the matching guardrails, memoised per policy.

    The merge depends only on which rules matched; templates and TTL caps depend on the
    identity and the time, so the caller applies them every time.
    """
    guarding = [rule for rule in matched if rule.is_guardrail and rule.permissions is not None]

    def merged() -> Grant:
        guardrails = [rule.permissions for rule in guarding if rule.permissions is not None]
        return with_guardrails(merge_grants(rule_ids, grants, policy.defaults), guardrails)

    grant: Grant = policy.memo((rule_ids, tuple(rule.id for rule in guarding)), merged)
    return grant


def _grant(rule: Rule) -> GrantSpec:
    assert rule.grant is not None  # Rule validation: every allow rule has a grant
    return rule.grant


def _ttl_caps(grants: Sequence[GrantSpec], facts: Facts) -> list[timedelta]:
    caps: list[timedelta] = []
    if facts.identity.expires_at is not None:
        caps.append(facts.identity.expires_at - facts.now)
    for grant in grants:
        if grant.windows is not None and grant.time_zone is not None:
            left = time_left(grant.windows, grant.time_zone, facts.now)
            if left is not None:
                caps.append(left)
    return caps


def _no_match(traces: Sequence[RuleTrace]) -> Deny:
    near = [set(t.failed) for t in traces if t.effect is Effect.ALLOW and t.failed]
    if any(failed <= _WINDOW_KEYS for failed in near):
        return Deny(DenyReason.OUTSIDE_CONNECT_WINDOW,
                    detail="a rule matches the identity outside its connect windows")
    if any(failed <= _CONNECTION_KEYS | _WINDOW_KEYS for failed in near):
        return Deny(DenyReason.CONNECTION_NOT_ALLOWED,
                    detail="a rule matches the identity but not its source or connection type")
    return Deny(DenyReason.NO_MATCHING_RULE, detail="no rule matched")
