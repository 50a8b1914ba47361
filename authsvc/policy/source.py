"""Strict YAML for policy files: parse to a node tree (for locations) and plain data.

PyYAML's ``SafeLoader`` is lenient in ways that hurt a security policy, so this loader:

- refuses duplicate mapping keys (PyYAML silently keeps the last one, so a reviewer could read
  a different grant than the one that takes effect) and non-string keys;
- refuses aliases and ``<<`` merge keys: every rule reads on its own, and alias fan-out cannot
  blow up validation time;
- refuses empty values and ``null``/``~``: ``subject:`` left blank must not silently drop a
  match condition and widen a rule, so a key is either given a value or left out;
- resolves scalars closer to YAML 1.2: only ``true``/``false`` are booleans (``NO`` and ``on``
  stay strings), integers are plain decimals (no ``1:30`` sexagesimal = 90, no ``0100`` octal),
  and there are no implicit floats.

Pure: takes text, returns values. Errors are ``PolicyError`` with 1-based line and column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from authsvc.errors import PolicyError

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"


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


class DuplicateDefinitionError(PolicyError):
    """Something defined twice (a YAML key, a rule id, ``defaults``). Located at the second
    definition; ``first`` is where the first one is."""

    def __init__(self, message: str, *, at: Location, first: Location, hint: str = "") -> None:
        self.first = first
        super().__init__(message, file=at.file, line=at.line, column=at.column,
                         hint=hint or f"first defined at {first}")


class _DuplicateKey(yaml.MarkedYAMLError):
    def __init__(self, key: str, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=second)
        self.first_mark = first
        self.second_mark = second


def _yaml12_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    lenient = {_BOOL_TAG, _INT_TAG, _FLOAT_TAG}
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag not in lenient]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _StrictLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = _yaml12_resolvers()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases are not supported in policy files", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise yaml.constructor.ConstructorError(
                    None, None, "merge keys (<<) are not supported", key_node.start_mark)
            if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be strings", key_node.start_mark)
            if key_node.value in seen:
                raise _DuplicateKey(key_node.value, seen[key_node.value], key_node.start_mark)
            seen[key_node.value] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _refuse_null(loader: yaml.SafeLoader, node: Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, "empty value; give a value or leave the key out", node.start_mark)


_StrictLoader.add_constructor("tag:yaml.org,2002:null", _refuse_null)
_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """One parsed document: its name, node tree (``None`` if empty) and plain data."""

    name: str
    root: Node | None
    data: object


def parse_yaml(text: str, name: str) -> ParsedSource:
    """Parse one YAML document strictly; raise ``PolicyError`` located in ``name``."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader checks for unprintable characters up front
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _DuplicateKey as exc:
        raise DuplicateDefinitionError(
            exc.problem or "duplicate key", at=Location.of(name, exc.second_mark),
            first=Location.of(name, exc.first_mark),
        ) from exc
    except yaml.MarkedYAMLError as exc:
        raise _marked_error(exc, name) from exc
    except yaml.reader.ReaderError as exc:
        line, column = line_column(text, exc.position)
        raise PolicyError(f"unacceptable character {chr(exc.character)!r}", file=name,
                          line=line, column=column) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return ParsedSource(name=name, root=root, data=data)


def _marked_error(exc: yaml.MarkedYAMLError, name: str) -> PolicyError:
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "invalid YAML"
    hint = ""
    if exc.problem and exc.context:
        hint = exc.context + (f" that starts at {exc.context_mark.line + 1}:"
                              f"{exc.context_mark.column + 1}" if exc.context_mark else "")
    if mark is None:
        return PolicyError(message, file=name, hint=hint)
    where = Location.of(name, mark)
    return PolicyError(message, file=name, line=where.line, column=where.column, hint=hint)


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
