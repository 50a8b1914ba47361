"""Lint check on what a grant's subscribe allows deliver: an allow ``P.*`` that authsvc cannot
seal (``star_unsealed``).

nats-server 2.15 lets allow ``P.*`` accept ``SUB P.>`` and delivers every deeper subject to
it; the engine adds the deny ``P.*.>`` to the rendered grant (``access.seals``), except where
another allow of the grant reaches under ``P.*.>``, which that deny would cut. Here, per rule
and before rendering: placeholders count as tokens equal only to themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from authsvc.domain import SubjectPermission
from authsvc.policy.access import unsealed
from authsvc.policy.model import Rule
from authsvc.policy.subjects import SEPARATOR

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
_OPAQUE = "\x00"  # stands for "." inside a placeholder, so one placeholder stays one token


def star_unsealed(rule: Rule) -> Iterator[str]:
    """Why each subscribe allow ``P.*`` of ``rule``'s grant receives deeper subjects."""
    grant = rule.grant
    if grant is None:
        return
    written = {_opaque(subject): subject
               for subject in grant.subscribe.allow + grant.subscribe.deny}
    sub = SubjectPermission(allow=tuple(_opaque(s) for s in grant.subscribe.allow),
                            deny=tuple(_opaque(s) for s in grant.subscribe.deny))
    for pattern, blockers in unsealed(sub):
        head = written[pattern].rpartition(SEPARATOR)[0]
        broad = f"{head}.>" if head else ">"
        cut = ", ".join(repr(written[blocker]) for blocker in blockers)
        yield (f"subscribe {written[pattern]!r} also admits SUB {broad!r}, to which nats-server "
               f"delivers every deeper subject; the deny {written[pattern] + '.>'!r} that "
               f"would stop it is left out because it would cut {cut}: allow the deeper "
               f"subjects by name, or {broad!r} if all of them are meant")


def _opaque(subject: str) -> str:
    return _PLACEHOLDER.sub(lambda found: found.group(0).replace(SEPARATOR, _OPAQUE), subject)
