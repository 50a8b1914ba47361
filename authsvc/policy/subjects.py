"""NATS subject syntax and wildcard matching (nats-server ``sublist.go``).

A subject is a ``.``-separated list of non-empty tokens. In a permission pattern ``*`` matches
exactly one token and ``>`` matches one or more trailing tokens, so ``foo.>`` does not match
``foo`` (nats-server#619). Matching is case-sensitive.

We are stricter than nats-server in one place: a token that merely *contains* ``*`` or ``>``
(``foo*``, ``a>b``) is a literal to the server, but in a policy it is almost always a typo for
a wildcard, so ``validate_subject`` refuses it.
"""

from __future__ import annotations

SEPARATOR = "."
WILDCARD = "*"  # one token (nats-server: pwc)
FULL_WILDCARD = ">"  # one or more trailing tokens (fwc)


def validate_subject(subject: str) -> str | None:
    """Return what is wrong with ``subject`` as a permission subject, or ``None`` if valid."""
    if not subject:
        return "subject is empty"
    for char in subject:
        # Whitespace separates fields in the NATS protocol (SUB <subject> [queue] <sid>), and
        # control characters have no business in a subject.
        if char.isspace() or not char.isprintable():
            return f"contains whitespace or a control character ({char!r})"
    tokens = subject.split(SEPARATOR)
    for index, token in enumerate(tokens):
        if not token:
            return f"token {index + 1} is empty"
        if token == FULL_WILDCARD and index != len(tokens) - 1:
            return "'>' may only be the last token"
        if len(token) > 1 and (WILDCARD in token or FULL_WILDCARD in token):
            return f"token {token!r} mixes a wildcard with other characters"
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``pattern`` (which may hold wildcards) matches ``subject`` under NATS rules.

    ``subject`` is taken literally token by token: a ``*`` in it is only matched by a ``*`` or a
    wildcard in ``pattern``. Deciding whether one wildcard subscription is covered by another
    (the server's sublist semantics) is a separate question. Invalid input never matches.
    """
    if validate_subject(pattern) is not None or validate_subject(subject) is not None:
        return False
    pattern_tokens = pattern.split(SEPARATOR)
    subject_tokens = subject.split(SEPARATOR)
    for index, token in enumerate(pattern_tokens):
        if token == FULL_WILDCARD:
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != WILDCARD and token != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)
