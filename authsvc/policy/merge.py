"""Merging the grants of several matching allow rules (same account) into one ``Grant``.

The merge is commutative, so rule order cannot change the outcome:
publish/subscribe allow and deny lists are unioned (NATS enforces deny-wins at runtime), the TTL
is the shortest asked for and never above ``max_ttl``, each limit is the most restrictive one
given, and ``resp`` is present if any rule grants it, with the largest ``max`` and ``ttl``.
Once rendered, a grant gets the subscribe denies that keep each allow ``P.*`` from
delivering deeper subjects (``with_seals``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta

from authsvc.domain import (
    UNLIMITED,
    Grant,
    Limits,
    Permissions,
    ResponsePermission,
    SubjectPermission,
)
from authsvc.policy.access import seals
from authsvc.policy.model import (
    Defaults,
    GrantSpec,
    Guardrail,
    LimitsSpec,
    ResponsesSpec,
    SubjectRules,
)


def merge_grants(rule_ids: Sequence[str], grants: Sequence[GrantSpec], defaults: Defaults) -> Grant:
    """Merge ``grants`` (non-empty, one account) from the rules ``rule_ids`` into one ``Grant``."""
    if not grants or len({grant.account for grant in grants}) != 1:
        raise ValueError("merge_grants needs at least one grant, all for the same account")
    ttl = min(grant.ttl or defaults.ttl for grant in grants)
    return Grant(
        account=grants[0].account,
        permissions=Permissions(
            pub=_merge_subjects(grant.publish for grant in grants),
            sub=_merge_subjects(grant.subscribe for grant in grants),
            resp=_merge_responses([g.responses for g in grants if g.responses is not None]),
        ),
        limits=_merge_limits([grant.limits for grant in grants if grant.limits is not None]),
        ttl=min(ttl, defaults.max_ttl),
        rule_ids=tuple(sorted(rule_ids)),
    )


def _merge_subjects(rules: Iterable[SubjectRules]) -> SubjectPermission:
    allow: set[str] = set()
    deny: set[str] = set()
    for rule in rules:
        allow.update(rule.allow)
        deny.update(rule.deny)
    return SubjectPermission(allow=tuple(sorted(allow)), deny=tuple(sorted(deny)))


def _merge_responses(specs: Sequence[ResponsesSpec]) -> ResponsePermission | None:
    if not specs:
        return None
    return ResponsePermission(
        max_msgs=max(spec.max for spec in specs), ttl=max(spec.ttl for spec in specs)
    )


def _merge_limits(specs: Sequence[LimitsSpec]) -> Limits:
    return Limits(
        subs=_most_restrictive(spec.subs for spec in specs),
        data=_most_restrictive(spec.data for spec in specs),
        payload=_most_restrictive(spec.payload for spec in specs),
    )


def _most_restrictive(values: Iterable[int]) -> int:
    """The smallest bounded value; ``UNLIMITED`` only if nothing is bounded."""
    bounded = [value for value in values if value != UNLIMITED]
    return min(bounded) if bounded else UNLIMITED


def with_guardrails(grant: Grant, guardrails: Sequence[Guardrail]) -> Grant:
    """``grant`` with every guardrail's subjects added to its deny lists (deny wins in NATS)."""
    if not guardrails:
        return grant
    pub, sub = grant.permissions.pub, grant.permissions.sub
    pub_deny = set(pub.deny).union(*(guard.publish for guard in guardrails))
    sub_deny = set(sub.deny).union(*(guard.subscribe for guard in guardrails))
    permissions = replace(
        grant.permissions,
        pub=replace(pub, deny=tuple(sorted(pub_deny))),
        sub=replace(sub, deny=tuple(sorted(sub_deny))),
    )
    return replace(grant, permissions=permissions)


# The same subscribe permissions recur on every connect of an identity (or of every identity
# of a template-free grant): compute their seals once.
_seals = functools.lru_cache(maxsize=4096)(seals)


def with_seals(grant: Grant) -> Grant:
    """``grant`` with a subscribe deny ``P.*.>`` for each subscribe allow ``P.*`` that
    nothing else in the grant lets go deeper (``access.seals``).

    nats-server 2.15 lets allow ``P.*`` accept ``SUB P.>`` and delivers ``P.x.y.z`` to it;
    without this a grant of ``tenants.acme.*`` reads every deeper subject of the tenant.
    Applied to the rendered grant, so the JWT and the audit record (both written from these
    permissions) carry the same entries, and ``policy test`` checks what is minted.
    """
    sub = grant.permissions.sub
    if not any(entry == "*" or entry.endswith(".*") for entry in sub.allow):
        return grant  # nothing to seal: the usual grant, decided at the cost of one scan
    added = _seals(sub)
    if not added:
        return grant
    sealed = replace(sub, deny=tuple(sorted({*sub.deny, *added})))
    return replace(grant, permissions=replace(grant.permissions, sub=sealed))


def cap_ttl(grant: Grant, caps: Iterable[timedelta]) -> Grant:
    """``grant`` with its TTL lowered to the smallest cap (identity expiry, window end)."""
    ttl = min([grant.ttl, *caps])
    return grant if ttl == grant.ttl else replace(grant, ttl=ttl)
