"""Strict YAML for policy files: parse to a node tree (for locations) and plain data.

PyYAML's ``SafeLoader`` is lenient in ways that hurt a security policy, so this loader:

- refuses duplicate mapping keys (PyYAML silently keeps the last one, so a reviewer could read
  a different grant than the one that takes effect) and non-string keys;
- refuses anchors, aliases and ``<<`` merge keys: every rule reads on its own, and alias
  fan-out cannot blow up validation time;
- refuses explicit tags (``!!int 1:30``, ``!!bool no``, ``!!binary``): they would bring back
  the YAML 1.1 readings below, and types no policy key takes;
- refuses empty values and ``null``/``~``: ``subject:`` left blank must not silently drop a
  match condition and widen a rule, so a key is either given a value or left out;
- resolves scalars closer to YAML 1.2: only ``true``/``false`` are booleans (``NO`` and ``on``
  stay strings), integers are plain decimals (no ``1:30`` sexagesimal = 90, no ``0100`` octal),
  and there are no implicit floats.

The loaders themselves, libyaml's fast one and the pure-Python reference, are in
``yaml_loaders``. Pure: takes text, returns values. Errors are ``Problem``s (``yaml_syntax``,
``yaml_refused``, ``yaml_anchor``, ``yaml_tag``, ``yaml_character``, ``duplicate_key``) with
1-based line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from authsvc.policy.problems import Problem
from authsvc.policy.yaml_loaders import (
    DuplicateKey,
    FastLoader,
    ReferenceLoader,
    Refused,
    StrictLoader,
)


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based position in a policy source."""

    file: str
    line: int
    column: int

    @classmethod
    def of(cls, file: str, mark: yaml.Mark) -> Location:
        """Convert a PyYAML (0-based) mark."""
        return cls(file=file, line=mark.line + 1, column=mark.column + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class DuplicateDefinitionError(Problem):
    """Something defined twice (a YAML key, a rule id, ``defaults``). Located at the second
    definition; ``first`` is where the first one is."""

    def __init__(self, message: str, *, at: Location, first: Location, hint: str = "",
                 code: str = "duplicate_key") -> None:
        self.first = first
        super().__init__(message, code=code, file=at.file, line=at.line, column=at.column,
                         hint=hint or f"first defined at {first}")


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """One parsed document: its name, node tree (``None`` if empty) and plain data."""

    name: str
    root: Node | None
    data: object


def parse_yaml(text: str, name: str) -> ParsedSource:
    """Parse one YAML document strictly; raise a ``Problem`` located in ``name``.

    libyaml parses when PyYAML has it; whatever it leaves or refuses is parsed again by the
    pure-Python reference parser, which either reports it as before or, where libyaml alone
    objected, accepts it (``yaml_loaders``).
    """
    if FastLoader is not None:
        try:
            return _parse(FastLoader, text, name)
        except (yaml.YAMLError, ValueError):
            pass  # reported, or accepted, by the reference parser below
    try:
        return _parse(ReferenceLoader, text, name)
    except DuplicateKey as exc:
        raise DuplicateDefinitionError(
            exc.problem or "duplicate key", at=Location.of(name, exc.second_mark),
            first=Location.of(name, exc.first_mark),
        ) from exc
    except yaml.MarkedYAMLError as exc:
        raise _marked_error(exc, name) from exc
    except yaml.reader.ReaderError as exc:
        line, column = line_column(text, exc.position)
        raise Problem(f"unacceptable character {chr(exc.character)!r}", code="yaml_character",
                      file=name, line=line, column=column) from exc


def _parse(make: Callable[[str], StrictLoader], text: str, name: str) -> ParsedSource:
    loader = make(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return ParsedSource(name=name, root=root, data=data)


def _marked_error(exc: yaml.MarkedYAMLError, name: str) -> Problem:
    # yaml_refused: YAML that policy files do not take (aliases, several documents, empty
    # values, merge keys, non-string keys), yaml_anchor / yaml_tag for anchors and explicit
    # tags (``Refused`` carries its code); yaml_syntax: not YAML at all.
    refused = isinstance(exc, yaml.composer.ComposerError | yaml.constructor.ConstructorError)
    code = "yaml_refused" if refused else "yaml_syntax"
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "invalid YAML"
    hint = ""
    if isinstance(exc, Refused):
        code, hint = exc.code, exc.hint
    elif exc.problem and exc.context:
        hint = exc.context + (f" that starts at {exc.context_mark.line + 1}:"
                              f"{exc.context_mark.column + 1}" if exc.context_mark else "")
    if mark is None:
        return Problem(message, code=code, file=name, hint=hint)
    where = Location.of(name, mark)
    return Problem(message, code=code, file=name, line=where.line, column=where.column,
                   hint=hint)


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def locate(root: Node, path: Sequence[str | int], *, key: bool = False) -> Node:
    """The deepest node along ``path`` (mapping keys and sequence indexes) that exists.

    With ``key=True`` and a full match ending in a mapping key, return the key node rather than
    its value (where an unknown key should be reported).
    """
    node = root
    for depth, part in enumerate(path):
        child = _child(node, part, want_key=key and depth == len(path) - 1)
        if child is None:
            break
        node = child
    return node


def _child(node: Node, part: str | int, *, want_key: bool) -> Node | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == part:
                return key_node if want_key else value_node
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
