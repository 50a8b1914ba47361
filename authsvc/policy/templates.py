"""Subject templates: identity values rendered into permission subjects, never widening them.

Syntax, inside any subject of a grant or guardrail::

    {{claims.<name>}}        a single-valued claim (string or integer)
    {{each claims.<name>}}   a list claim: one subject per value, at most MAX_EXPANSION values
    {{subject}}              the identity's source-local subject
    {{principal.hash}}       16 hex digits of SHA-256(principal): a safe per-identity token

Every rendered value must match ``TOKEN_CLASS`` (a token class that cannot carry a wildcard,
a separator or ``$``).
A value with ``.``, ``*``, ``>``, whitespace, ``$`` or non-ASCII would change which subjects the
entry matches (nats-server pastes scoped-signing-key template values unescaped), so such a
value, a missing claim, or too many values fail the whole decision
(``template_invalid``): the entry is never dropped and never widened. Guardrail templates fail
the same way, matching nats-server, which rejects a user whose deny template cannot resolve.

A value must also not make the first token of a subject start with ``_INBOX`` (compared
case-sensitively, as nats-server compares subjects): ``{{claims.team}}.>`` with
``team: _INBOX`` would be every reply in the account, and ``_INBOX_<hash>`` another identity's
``_INBOX_{{principal.hash}}``. A first token the policy itself starts with ``_INBOX`` (such as
``_INBOX_{{principal.hash}}``) is the author's choice and renders as written.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from authsvc.domain import Grant, Identity, SubjectPermission

TOKEN_CLASS = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_EXPANSION = 32
_PLACEHOLDER = re.compile(r"\{\{\s*(each\s+)?([A-Za-z0-9_.:/-]+)\s*\}\}")
_CLAIM = "claims."
# The reply-subject prefix nats clients use (nats.go/nats.py ``_INBOX.``), and per-identity
# ``_INBOX_<hash>`` inboxes: a rendered value must never reach into them.
_INBOX = "_INBOX"


class TemplateError(ValueError):
    """A template cannot be rendered safely for this identity; the decision is a deny."""


@dataclass(frozen=True, slots=True)
class _Slot:
    each: bool
    expression: str


def is_template(subject: str) -> bool:
    """Whether ``subject`` holds a ``{{...}}`` placeholder."""
    return "{{" in subject or "}}" in subject


def check_template(subject: str) -> str | None:
    """What is wrong with the placeholders in ``subject``, or ``None`` when they are sound."""
    slots = _slots(subject)
    leftover = _PLACEHOLDER.sub("", subject)
    if "{{" in leftover or "}}" in leftover:
        return "unbalanced or malformed {{...}} placeholder"
    if sum(slot.each for slot in slots) > 1:
        return "at most one {{each ...}} per subject"
    for slot in slots:
        if slot.each and not slot.expression.startswith(_CLAIM):
            return f"each needs a list claim, not {slot.expression!r}"
        if slot.expression not in ("subject", "principal.hash") and not (
                slot.expression.startswith(_CLAIM) and len(slot.expression) > len(_CLAIM)):
            return (f"unknown template value {slot.expression!r}; use claims.<name>, subject "
                    "or principal.hash")
    return None


def skeleton(subject: str) -> str:
    """``subject`` with every placeholder replaced by the token ``x`` (syntax checks, lint)."""
    return _PLACEHOLDER.sub("x", subject)


def claims_used(subject: str) -> tuple[str, ...]:
    """The claim names the placeholders of ``subject`` read."""
    return tuple(s.expression[len(_CLAIM):] for s in _slots(subject)
                 if s.expression.startswith(_CLAIM))


def render(subject: str, identity: Identity) -> tuple[str, ...]:
    """The concrete subjects for ``identity``; raises ``TemplateError`` instead of widening."""
    if not is_template(subject):
        return (subject,)
    parts = _PLACEHOLDER.split(subject)
    # split() yields: text, (each?, expression, text)*
    pieces: list[tuple[str, ...]] = [(parts[0],)]
    for index in range(1, len(parts), 3):
        pieces.append(_values(_Slot(bool(parts[index]), parts[index + 1]), identity))
        pieces.append((parts[index + 2],))
    rendered = tuple("".join(combo) for combo in itertools.product(*pieces))
    # The text before the first placeholder is the policy's own: when it already starts
    # with _INBOX (or holds the whole first token), no value chose the first token's prefix.
    if not parts[0].startswith(_INBOX) and any(
            out.split(".", 1)[0].startswith(_INBOX) for out in rendered):
        raise TemplateError(f"a value would start the first token of {subject!r} with the "
                            f"reserved {_INBOX} prefix")
    return rendered


def render_all(subjects: Sequence[str], identity: Identity) -> tuple[str, ...]:
    """Render every subject; sorted, de-duplicated."""
    return tuple(sorted({out for subject in subjects for out in render(subject, identity)}))


def _slots(subject: str) -> list[_Slot]:
    return [_Slot(bool(each), expr) for each, expr in _PLACEHOLDER.findall(subject)]


def _values(slot: _Slot, identity: Identity) -> tuple[str, ...]:
    if slot.expression == "subject":
        return (_token(identity.subject, "subject"),)
    if slot.expression == "principal.hash":
        return (hashlib.sha256(identity.principal.encode()).hexdigest()[:16],)
    name = slot.expression[len(_CLAIM):]
    value = identity.attributes.get(name)
    if value is None:
        raise TemplateError(f"claim {name!r} is missing")
    if slot.each:
        if not isinstance(value, tuple) or not value:
            raise TemplateError(f"claim {name!r} is not a non-empty list")
        if len(value) > MAX_EXPANSION:
            raise TemplateError(f"claim {name!r} has more than {MAX_EXPANSION} values")
        return tuple(_token(item, name) for item in value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TemplateError(f"claim {name!r} is not a single string or integer "
                            "(a list needs {{each ...}})")
    return (_token(str(value), name),)


def _token(value: str, name: str) -> str:
    # fullmatch with an ASCII class: rejects '.', '*', '>', '$', whitespace and non-ASCII.
    if TOKEN_CLASS.fullmatch(value) is None:
        raise TemplateError(f"value of {name!r} is not a safe subject token")
    return value


def render_grant(grant: Grant, identity: Identity) -> Grant:
    """``grant`` with every subject template rendered for ``identity`` (or ``TemplateError``)."""
    if _renders_to_itself(grant):
        return grant  # no placeholder, lists already sorted and distinct: nothing to do

    def subjects(rule: SubjectPermission) -> SubjectPermission:
        return SubjectPermission(allow=render_all(rule.allow, identity),
                                 deny=render_all(rule.deny, identity))

    permissions = replace(grant.permissions, pub=subjects(grant.permissions.pub),
                          sub=subjects(grant.permissions.sub))
    return replace(grant, permissions=permissions)


def _renders_to_itself(grant: Grant) -> bool:
    """Whether rendering ``grant`` would return an equal grant for any identity: no subject
    holds a placeholder and every list is already what ``render_all`` makes of it."""
    permissions = grant.permissions
    for subjects in (permissions.pub.allow, permissions.pub.deny, permissions.sub.allow,
                     permissions.sub.deny):
        for index, subject in enumerate(subjects):
            if is_template(subject) or (index and subjects[index - 1] >= subject):
                return False
    return True
