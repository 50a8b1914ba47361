"""Turning pydantic validation errors into ``PolicyError`` at the offending YAML node."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from authsvc.errors import PolicyError
from authsvc.policy import model
from authsvc.policy.claims import ClaimTest
from authsvc.policy.source import Location, locate
from authsvc.policy.windows import Window

# Errors raised by a model validator are reported on the model; these point at one of its keys.
_FOCUS_KEY = {"grant_forbidden": "grant"}

_HINTS = {
    "subject_invalid": "subjects are dot-separated non-empty tokens; '*' must be a whole token "
                       "and '>' only the last one",
    "duration_invalid": "write e.g. 30s, 15m, 1h30m, 2d, or an integer number of seconds",
    "grant_required": "add a grant, or set effect: deny",
    "grant_forbidden": "a deny rule refuses the connection outright; remove its grant",
    "match_empty": "give at least one of: source, issuer, subject, subject_glob, claims, "
                   "groups, aws, source_cidrs, connection_types",
    "ttl_exceeds_max": "raise defaults.max_ttl or lower defaults.ttl",
    "cidr_invalid": "write a network address with its prefix, e.g. 10.0.0.0/8",
    "time_zone_required": "name an IANA zone, e.g. time_zone: Europe/Berlin or UTC",
    "zone_invalid": "use an IANA zone name such as UTC or America/New_York",
    "clock_invalid": "write 24-hour HH:MM, e.g. 08:00 or 18:30",
    "claim_test_empty": "e.g. tenant: {present: true} or groups: {contains_any: [...]}",
    "match_required": "add a match, or give a deny rule permissions to make it a guardrail",
    "permissions_forbidden": "set effect: deny for a guardrail, or use grant.*.deny",
}

_MODELS: tuple[type[BaseModel], ...] = (
    model.PolicyDocument, model.Defaults, model.Rule, model.Match, model.GrantSpec,
    model.SubjectRules, model.ResponsesSpec, model.LimitsSpec, model.AwsMatch, model.Guardrail,
    Window, ClaimTest,
)


def validation_error(exc: ValidationError, root: Node | None, file: str) -> PolicyError:
    """The first problem in ``exc`` in document order, as a located ``PolicyError``."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if root is None:
        return PolicyError(_message(errors[0]), file=file, hint=_hint(errors[0]))
    located = [(Location.of(file, _node(error, root).start_mark), error) for error in errors]
    where, error = min(located, key=lambda pair: (pair[0].line, pair[0].column))
    message = _message(error)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return PolicyError(message, file=file, line=where.line, column=where.column,
                       hint=_hint(error))


def _node(error: ErrorDetails, root: Node) -> Node:
    path = list(error["loc"])
    if error["type"] in _FOCUS_KEY:
        path.append(_FOCUS_KEY[error["type"]])
    return locate(root, path, key=error["type"] == "extra_forbidden" or error["type"] in _FOCUS_KEY)


def _message(error: ErrorDetails) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        loc, text = loc[:-1], f"unknown key {loc[-1]!r}"
    elif error["type"] == "missing":
        loc, text = loc[:-1], f"missing required key {loc[-1]!r}"
    elif error["type"] == "model_type" and not loc:
        text = "a policy file must be a mapping with apiVersion, kind and rules"
    else:
        text = error["msg"]
    where = dotted(loc)
    return f"{where}: {text}" if where else text


def dotted(loc: Sequence[str | int]) -> str:
    """``("rules", 0, "grant")`` -> ``rules[0].grant``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _hint(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), _known_keys(), n=1)
        return f"did you mean {close[0]!r}?" if close else "see docs/policy.md for allowed keys"
    if kind == "literal_error" and error["loc"][-1:] == ("apiVersion",):
        return f"this loader reads apiVersion: {model.API_VERSION}"
    return _HINTS.get(kind, "")


def _known_keys() -> list[str]:
    return sorted({info.alias or name for m in _MODELS for name, info in m.model_fields.items()})
