"""Turning pydantic validation errors into located problems, every one of them.

Each problem is a ``Problem`` at its own YAML node, with a stable code (pydantic's error type,
or ``unknown_key`` / ``missing_key``) and a hint. An unknown key's hint says where the key
belongs when it is a key of a nearby section (``'ttl' belongs under 'grant'``), else the
closest key of its own section; a file of the other kind (a policy where a test file is
expected, or the reverse) is one ``InputFault`` instead of a list of missing keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import groupby

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode

from authsvc.errors import PolicyError
from authsvc.policy import model
from authsvc.policy.cases import PolicyTestFile
from authsvc.policy.problems import InputFault, Problem, Problems
from authsvc.policy.sections import Sections, close_key, dotted, keys_of, placement
from authsvc.policy.source import Location, locate

# Errors raised by a model validator are reported on the model; these point at one of its keys.
_FOCUS_KEY = {"grant_forbidden": "grant"}
_CODES = {"extra_forbidden": "unknown_key", "missing": "missing_key"}
# At one position, an unknown key is reported before what it leaves missing.
_ORDER = {"extra_forbidden": 0, "missing": 2}

_HINTS = {
    "subject_invalid": "subjects are dot-separated non-empty tokens; '*' must be a whole token "
                       "and '>' only the last one",
    "duration_invalid": "write e.g. 30s, 15m, 1h30m, 2d, or an integer number of seconds",
    "grant_required": "add a grant, or set effect: deny",
    "grant_forbidden": "a deny rule refuses the connection outright; remove its grant",
    "match_empty": "give at least one of: source, issuer, subject, subject_glob, claims, "
                   "groups, aws, source_cidrs, connection_types",
    "ttl_exceeds_max": "raise defaults.max_ttl or lower defaults.ttl",
    "arn_glob_impossible": "the AWS IAM verifier matches canonical ARNs: "
                           "arn:aws:iam::ACCOUNT:role/NAME (assumed roles, without path), "
                           "arn:aws:iam::ACCOUNT:user/[PATH/]NAME, arn:aws:iam::ACCOUNT:root, "
                           "arn:aws:sts::ACCOUNT:federated-user/NAME",
    "cidr_invalid": "write a network address with its prefix, e.g. 10.0.0.0/8",
    "cidr_scoped": "a policy cannot check which interface a client came in on; list "
                   "global (non-link-local) networks without a %zone",
    "cidr_ipv4_mapped": "clients at ::ffff:a.b.c.d are matched as a.b.c.d, so write "
                        "the IPv4 network",
    "time_zone_required": "name an IANA zone, e.g. time_zone: Europe/Berlin or UTC",
    "zone_invalid": "use an IANA zone name such as UTC or America/New_York",
    "zone_host_dependent": "use an IANA Area/Location name such as Europe/Berlin, or UTC; "
                           "localtime, posixrules, Factory, posix/... and right/... mean "
                           "different things on different hosts",
    "clock_invalid": "write 24-hour HH:MM, e.g. 08:00 or 18:30",
    "claim_test_empty": "e.g. tenant: {present: true} or groups: {contains_any: [...]}",
    "match_required": "add a match, or give a deny rule permissions to make it a guardrail",
    "permissions_forbidden": "set effect: deny for a guardrail, or use grant.*.deny",
    "expect_allow_only": "a denied client has no account, TTL or subjects: keep decision and "
                         "reason (and rule_ids) for deny cases",
    "expect_deny_only": "an allowed client has no deny reason: drop reason, or expect deny",
}

# The documents a file can be, by the model name pydantic reports (``ValidationError.title``).
_DOCUMENTS: dict[str, tuple[type[BaseModel], str, str]] = {
    "PolicyDocument": (model.PolicyDocument, "Policy",
                       "a policy file must be a mapping with apiVersion, kind and rules"),
    "PolicyTestFile": (PolicyTestFile, "PolicyTest",
                       "a test file must be a mapping with apiVersion, kind, policy and cases"),
}
_WRONG_KIND_HINT = {
    "Policy": "`authsvc policy check` and `serve` read policy files; run a PolicyTest file "
              "with `authsvc policy test` or `authsvc policy explain`",
    "PolicyTest": "`authsvc policy test` and `explain` read test files (kind: PolicyTest) that "
                  "name their policy and write down each identity to decide as a case; to "
                  "ask about one identity, run `authsvc policy explain --policy PATH "
                  "--claims FILE` (or `-c SETTINGS --token FILE`)",
}


def validation_error(exc: ValidationError, root: Node | None, file: str) -> PolicyError:
    """Every problem in ``exc``, located and in document order: one ``Problem`` or
    ``Problems``."""
    errors = exc.errors(include_url=False)  # input and ctx feed hints, never the message
    document, kind, not_a_mapping = _DOCUMENTS.get(
        exc.title, (model.PolicyDocument, "Policy", _DOCUMENTS["PolicyDocument"][2]))
    if root is None:
        return _one_or_all([Problem(_message(error, not_a_mapping), code=_code(error),
                                    file=file, hint=_HINTS.get(error["type"], ""))
                            for error in errors])
    written = _written_kind(root)
    if written in _WRONG_KIND_HINT and written != kind:
        where = Location.of(file, locate(root, ("kind",)).start_mark)
        return InputFault(f"this is a {written} file (kind: {written}), not a {kind} file",
                          code="wrong_kind", file=file, line=where.line, column=where.column,
                          hint=_WRONG_KIND_HINT[kind])
    sections = Sections(document)
    located = [_located(error, root) for error in errors]
    problems = [_problem(group, root, file, sections, not_a_mapping, located)
                for group in _merged(located)]
    problems.sort(key=lambda pair: pair[0])
    return _one_or_all([problem for _, problem in problems])


def _one_or_all(found: Sequence[Problem]) -> PolicyError:
    return found[0] if len(found) == 1 else Problems(found)


_Located = tuple[tuple[int, int, int], ErrorDetails, int]  # (line, column, order), error, depth


def _located(error: ErrorDetails, root: Node) -> _Located:
    """The error with its node's position and how much of its ``loc`` exists in the YAML."""
    path = list(error["loc"])
    depth = _depth(root, path)
    if error["type"] in _FOCUS_KEY:
        path.append(_FOCUS_KEY[error["type"]])
    node = locate(root, path, key=error["type"] == "extra_forbidden"
                  or error["type"] in _FOCUS_KEY)
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1, _ORDER.get(error["type"], 1)), error, depth


def _depth(root: Node, path: Sequence[str | int]) -> int:
    """How many leading parts of ``path`` name nodes that exist."""
    node = root
    for depth in range(len(path)):
        child = locate(root, path[: depth + 1])
        if child is node:
            return depth
        node = child
    return len(path)


def _merged(located: Sequence[_Located]) -> list[list[_Located]]:
    """Errors grouped so that one value that fits no member of a union (``equals: [1]``:
    not a string, integer or boolean; pydantic reports one error per member, under
    ``loc`` parts that are type names) is one problem."""
    def union_member(item: _Located) -> tuple[object, ...]:
        _, error, depth = item
        if error["type"] in _CODES or depth == len(error["loc"]):
            return (id(item),)
        return tuple(error["loc"][:depth])

    ordered = sorted(located, key=lambda item: item[0])
    return [list(group) for _, group in groupby(ordered, key=union_member)]


def _problem(group: Sequence[_Located], root: Node, file: str, sections: Sections,
             not_a_mapping: str, located: Sequence[_Located]
             ) -> tuple[tuple[int, int, int], Problem]:
    position, error, depth = group[0]
    if len(group) == 1:
        message = _message(error, not_a_mapping)
    else:
        where = dotted(error["loc"][:depth])
        text = _either([item[1]["msg"] for item in group])
        message = f"{where}: {text}" if where else text
    hint, details = _hint(error, sections, located)
    return position, Problem(message, code=_code(error), file=file, line=position[0],
                             column=position[1], hint=hint, details=details)


def _either(messages: Sequence[str]) -> str:
    """pydantic's messages for the members of a union, as one sentence."""
    texts = list(dict.fromkeys(messages))
    lead = "Input should be "
    if len(texts) > 1 and all(text.startswith(lead) for text in texts):
        parts = [text.removeprefix(lead) for text in texts]
        return f"{lead}{', '.join(parts[:-1])} or {parts[-1]}"
    return "; or ".join(texts)


def _code(error: ErrorDetails) -> str:
    return _CODES.get(error["type"], error["type"])


def _written_kind(root: Node) -> str:
    """The ``kind:`` a document declares, if it is a mapping with a plain ``kind``."""
    if not isinstance(root, MappingNode):
        return ""
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "kind" and isinstance(value, ScalarNode):
            return str(value.value)
    return ""


def _message(error: ErrorDetails, not_a_mapping: str) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        loc, text = loc[:-1], f"unknown key {loc[-1]!r}"
    elif error["type"] == "missing":
        loc, text = loc[:-1], f"missing required key {loc[-1]!r}"
    elif error["type"] == "model_type" and not loc:
        text = not_a_mapping
    else:
        text = error["msg"]
    where = dotted(loc)
    return f"{where}: {text}" if where else text


def _hint(error: ErrorDetails, sections: Sections, located: Sequence[_Located]
          ) -> tuple[str, dict[str, object]]:
    """The hint, and for tools the structured part of it (``Suggestion.details``)."""
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        suggestion = placement(sections, loc)
        if suggestion is None:
            section = sections.model_at(tuple(loc[:-1]))
            if section is None:
                return "see docs/policy.md for the keys allowed here", {}
            allowed = list(keys_of(section))
            return f"the keys allowed here: {', '.join(allowed)}", {"allowed": allowed}
        return suggestion.hint, suggestion.details()
    if kind == "missing":
        return _misspelt_as(loc, located), {}
    if kind == "literal_error" and loc[-1:] == ("apiVersion",):
        return f"this loader reads apiVersion: {model.API_VERSION}", {}
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        near = close_key(str(error.get("input", "")), choices)
        if near is not None:
            return f"did you mean {near!r}?", {"did_you_mean": near}
        return (f"one of: {', '.join(choices)}", {}) if choices else ("", {})
    if kind == "string_pattern_mismatch" and loc[-1:] == ("id",):
        return ("an id is lowercase letters, digits, '.', '_' and '-', starting with a letter "
                "or digit, e.g. orders-writer"), {}
    return _HINTS.get(kind, ""), {}


def _misspelt_as(loc: Sequence[str | int], located: Sequence[_Located]) -> str:
    """For a missing key: the unknown key next to it that looks like a misspelling of it."""
    for (line, column, _), other, _ in located:
        theirs = other["loc"]
        if other["type"] == "extra_forbidden" and tuple(theirs[:-1]) == tuple(loc[:-1]) \
                and close_key(str(theirs[-1]), [str(loc[-1])]):
            return f"is {theirs[-1]!r} (at {line}:{column}) a misspelling of it?"
    return ""
