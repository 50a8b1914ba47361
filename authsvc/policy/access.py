"""Can this grant publish / subscribe / receive? A model of nats-server's permission checks.

``policy test`` and ``policy diff`` answer with these; ``tests/integration/policy`` checks them
against a real nats-server. Server behaviour modelled (nats-server ``client.go``,
publish/subscribe permission checks; checked against 2.15.1):

- publish: the subject must be literal (publishing to a wildcard is refused, nats-server#375);
  an allow entry must match it and no deny entry may. A ``Grant`` with no allow entries allows
  nothing: the minter writes ``deny: [">"]`` for it.
- subscribe: the subscription subject (which may hold wildcards) is looked up in the allow and
  deny sublists token by token. A ``*`` entry matches any one token of the subscription, even a
  literal ``>``, so allow ``orders.*`` accepts ``SUB orders.>`` (sublist ``matchLevel``); and a
  deny entry only refuses subscriptions it matches, so deny ``orders.secret.>`` does not refuse
  ``SUB orders.>`` (``client.go`` ``checkDenySub``): the server drops denied messages at
  delivery instead.
- receive: a message on a literal subject arrives when some subscription the server accepts
  matches it and no deny entry matches it. Through the ``*``-accepts-``>`` quirk, allow
  ``orders.*`` alone lets ``SUB orders.>`` receive ``orders.a.b`` and every deeper subject;
  ``seals`` computes the deny entries that stop that (``merge.with_seals`` adds them).
- ``resp`` (dynamic reply permission) and queue-group entries are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterator

from authsvc.domain import Permissions, SubjectPermission
from authsvc.policy.subjects import (
    FULL_WILDCARD,
    SEPARATOR,
    WILDCARD,
    subject_matches,
    validate_subject,
)


def _is_literal(subject: str) -> bool:
    return all(token not in (WILDCARD, FULL_WILDCARD) for token in subject.split(SEPARATOR))


def _admitted(rule: SubjectPermission, subject: str) -> bool:
    allowed = any(subject_matches(pattern, subject) for pattern in rule.allow)
    return allowed and not any(subject_matches(pattern, subject) for pattern in rule.deny)


def can_publish(permissions: Permissions, subject: str) -> bool:
    """Whether the server accepts ``PUB subject`` from a client with ``permissions``."""
    return _is_literal(subject) and _admitted(permissions.pub, subject)


def can_subscribe(permissions: Permissions, subject: str) -> bool:
    """Whether the server accepts ``SUB subject`` (no queue group)."""
    return _admitted(permissions.sub, subject)


def can_receive(permissions: Permissions, subject: str) -> bool:
    """Whether a message published on literal ``subject`` reaches a subscription the server
    accepts from a client with ``permissions``.

    A deny entry that matches the subject stops it (refusing the literal SUB, filtering it
    out of a wildcard one; 2.15.1 filters also with a deny entry that only overlaps the
    subscription, e.g. ``tenants.*.secret`` under ``SUB tenants.acme.>``). Otherwise it
    arrives if the server accepts the literal SUB, or a ``P.>`` that an allow ``P.*`` admits
    (the quirk) and that matches the subject.
    """
    if validate_subject(subject) is not None or not _is_literal(subject):
        return False
    rule = permissions.sub
    if any(subject_matches(pattern, subject) for pattern in rule.deny):
        return False
    return any(_admitted(rule, candidate)
               for candidate in _subscriptions_reaching(rule.allow, subject))


def _subscriptions_reaching(allow: tuple[str, ...], subject: str) -> Iterator[str]:
    """The subscriptions worth trying for a literal ``subject``: itself, and for each allow
    ``P.*`` the ``P.>`` it admits, when that matches ``subject``.

    ``P`` is kept as written, ``*`` tokens included: a deny entry refuses ``SUB P.>`` only if
    it matches it token by token, and a literal ``*`` token is matched by fewer entries than
    any name in its place, so no other ``P.>`` through the same allow escapes more denies.
    """
    yield subject
    for pattern in allow:
        head, _, last = pattern.rpartition(SEPARATOR)
        if last == WILDCARD:
            broad = f"{head}{SEPARATOR}{FULL_WILDCARD}" if head else FULL_WILDCARD
            if subject_matches(broad, subject):
                yield broad


def seals(rule: SubjectPermission) -> tuple[str, ...]:
    """Subscribe deny entries ``P.*.>`` that keep each allow ``P.*`` to one token after ``P``.

    nats-server lets allow ``P.*`` accept ``SUB P.>`` and then delivers every deeper subject
    (``can_receive``). A deny ``P.*.>`` refuses no subscription that ``P.*`` admits (those
    have exactly one token after ``P``) and filters the deeper subjects at delivery, so
    ``P.x`` still arrives and ``P.x.y`` no longer does (checked against nats-server 2.15.1,
    ``tests/integration/policy``). It is left out when another allow entry reaches a subject
    it would deny, since it would cut that entry (deny wins; ``unsealed`` lists those);
    allow entries that a deny entry wholly covers allow nothing and do not count, and no
    seal is added that an existing deny entry already covers. ``*`` inside ``P`` is kept:
    ``a.*.*`` gets ``a.*.*.>``.
    """
    return tuple(seal for _pattern, seal, blockers in _star_allows(rule) if not blockers)


def unsealed(rule: SubjectPermission) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each allow ``P.*`` that ``seals`` leaves open, with the allow entries that keep it so.

    Template placeholders count as literal tokens, equal only to themselves: the lint reads
    unrendered subjects, and two placeholders may render alike or not.
    """
    return tuple((pattern, blockers) for pattern, _seal, blockers in _star_allows(rule)
                 if blockers)


def _star_allows(rule: SubjectPermission) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(allow ``P.*``, its seal ``P.*.>``, the other allow entries the seal would cut), for
    each such allow that no deny entry covers and whose seal no deny entry covers."""
    if not any(pattern.rpartition(SEPARATOR)[2] == WILDCARD for pattern in rule.allow):
        return  # the common case, on every connect: nothing to seal
    live = [pattern for pattern in rule.allow
            if not any(covers(deny, pattern) for deny in rule.deny)]
    for pattern in live:
        if pattern.rpartition(SEPARATOR)[2] != WILDCARD:
            continue
        seal = f"{pattern}{SEPARATOR}{FULL_WILDCARD}"
        if not any(covers(deny, seal) for deny in rule.deny):
            yield pattern, seal, tuple(other for other in live if overlap(other, seal))


def overlap(first: str, second: str) -> bool:
    """Whether some literal subject matches both patterns."""
    a, b = first.split(SEPARATOR), second.split(SEPARATOR)
    for x, y in zip(a, b, strict=False):
        if FULL_WILDCARD in (x, y):
            return True
        if WILDCARD not in (x, y) and x != y:
            return False
    return len(a) == len(b)


def covers(general: str, specific: str) -> bool:
    """Whether every literal subject ``specific`` matches is also matched by ``general``."""
    g, s = general.split(SEPARATOR), specific.split(SEPARATOR)
    for index, token in enumerate(g):
        if token == FULL_WILDCARD:
            return len(s) > index
        if index >= len(s) or s[index] == FULL_WILDCARD:
            return False
        if token != WILDCARD and s[index] != token:
            return False
    return len(g) == len(s)
