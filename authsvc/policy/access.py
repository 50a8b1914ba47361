"""Can this grant publish / subscribe / receive? A model of nats-server's permission checks.

``policy test`` and ``policy diff`` answer with these; ``tests/integration/policy`` checks them
against a real nats-server. Server behaviour modelled (nats-server ``client.go``,
publish/subscribe permission checks):

- publish: the subject must be literal (publishing to a wildcard is refused, nats-server#375);
  an allow entry must match it and no deny entry may. A ``Grant`` with no allow entries allows
  nothing: the minter writes ``deny: [">"]`` for it.
- subscribe: the subscription subject (which may hold wildcards) is looked up in the allow and
  deny sublists token by token. A ``*`` entry matches any one token of the subscription, even a
  literal ``>``, so allow ``orders.*`` accepts ``SUB orders.>`` (sublist ``matchLevel``); and a
  deny entry only refuses subscriptions it matches, so deny ``orders.secret.>`` does not refuse
  ``SUB orders.>`` (``client.go`` ``checkDenySub``): the server drops denied messages at
  delivery instead, which ``can_receive`` models.
- ``resp`` (dynamic reply permission) and queue-group entries are not modelled.
"""

from __future__ import annotations

from authsvc.domain import Permissions, SubjectPermission
from authsvc.policy.subjects import FULL_WILDCARD, SEPARATOR, WILDCARD, subject_matches


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
    """Whether a message published on literal ``subject`` reaches a permitted subscription."""
    return _is_literal(subject) and _admitted(permissions.sub, subject)
