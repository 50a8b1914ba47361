"""The strict YAML loaders behind ``source.parse_yaml``: one reference, one fast.

Both share the composer, constructor and resolver that make policy YAML strict (see
``source``); they differ in the scanner and parser underneath:

- ``ReferenceLoader`` is PyYAML's pure-Python scanner and parser. It defines what a policy
  file may contain, and its errors are the ones users see.
- ``FastLoader`` is libyaml's (``yaml._yaml.CParser``), about ten times faster, which is
  most of the time it takes to load a large policy. libyaml does not accept exactly the
  same language: it takes tabs as separators, other line breaks, wider anchor names, bare
  ``!`` tags, ``|#`` block headers and ``?`` inside plain scalars in flow collections where
  PyYAML refuses them or reads them differently. So it only takes text made
  of what both read alike, and raises ``NotPlain`` (a ``YAMLError``) for anything else;
  the caller parses such text, and anything libyaml refuses, again with the reference.

Node marks (line, column, character index) are the same under both, so errors located
through the node tree read the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    CollectionStartEvent,
    DocumentStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
# Characters the two scanners treat differently: tab as a separator, NEL and the Unicode
# line/paragraph separators as line breaks, a byte-order mark after the start.
_DIVERGENT = re.compile("[\t\x85\u2028\u2029\ufeff]")
# A block scalar header as PyYAML reads it: indicators, then a space or a line break.
_BLOCK_HEADER = re.compile(r"[|>](?:[1-9][+-]?|[+-][1-9]?)?(?:[ \r\n]|\Z)")


class DuplicateKey(yaml.MarkedYAMLError):
    """A mapping key given twice; ``first_mark`` and ``second_mark`` locate both."""

    def __init__(self, key: str, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=second)
        self.first_mark = first
        self.second_mark = second


class NotPlain(yaml.YAMLError):
    """Text the fast loader leaves to the reference loader."""


class Refused(yaml.composer.ComposerError):
    """YAML that policy files do not take, with the stable ``code`` and ``hint`` to report."""

    def __init__(self, problem: str, mark: Any, *, code: str, hint: str) -> None:
        # ``mark``: PyYAML's or libyaml's Mark (an event's ``start_mark``).
        super().__init__(problem=problem, problem_mark=mark)
        self.code = code
        self.hint = hint


_YAML_PREFIX = "tag:yaml.org,2002:"
_NO_SHARING = "write the value out in full: every rule reads on its own"


class _StrictComposer(Composer):
    """Refuses aliases, anchors and explicit tags, on any node.

    Anchors only exist for aliases. An explicit tag brings back what the resolver rules
    out (``!!int 1:30`` is 90, ``!!int 010`` is 8, ``!!bool no`` is false) and types no
    policy key takes (``!!timestamp``, ``!!binary``, ``!!set``): a value is read as it is
    written, or quoted to be a string. Untagged plain and quoted scalars carry no tag in
    their events (PyYAML ``Parser.parse_node``), so they are not affected.
    """

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent):
            raise Refused("aliases are not supported in policy files", event.start_mark,
                          code="yaml_refused", hint=_NO_SHARING)
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise Refused(f"anchor &{event.anchor} is not supported in policy files",
                          event.start_mark, code="yaml_anchor", hint=_NO_SHARING)
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.tag is not None:
            tag = event.tag
            written = f"!!{tag.removeprefix(_YAML_PREFIX)}" if tag.startswith(_YAML_PREFIX) \
                else tag
            raise Refused(f"explicit tag {written} is not supported in policy files",
                          event.start_mark, code="yaml_tag",
                          hint="remove the tag: only true and false are booleans, integers "
                               "are plain decimals, and quotes make a string")
        return super().compose_node(parent, index)


class _StrictConstructor(SafeConstructor):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.check_keys(node)
        return super().construct_mapping(node, deep=deep)

    def check_keys(self, node: MappingNode) -> None:
        """Keys are strings, given once; no merge keys."""
        seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise ConstructorError(
                    None, None, "merge keys (<<) are not supported", key_node.start_mark)
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                raise ConstructorError(
                    None, None, "mapping keys must be strings", key_node.start_mark)
            if key_node.value in seen:
                raise DuplicateKey(key_node.value, seen[key_node.value], key_node.start_mark)
            seen[key_node.value] = key_node.start_mark


def _refuse_null(loader: Any, node: Node) -> None:
    raise ConstructorError(
        None, None, "empty value; give a value or leave the key out", node.start_mark)


def _yaml12_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    lenient = {_BOOL_TAG, _INT_TAG, _FLOAT_TAG}
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag not in lenient]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _StrictResolver(Resolver):
    yaml_implicit_resolvers = _yaml12_resolvers()


_StrictConstructor.add_constructor("tag:yaml.org,2002:null", _refuse_null)
_StrictResolver.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictResolver.add_implicit_resolver(
    _INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))


class StrictLoader(_StrictComposer, _StrictConstructor, _StrictResolver):
    """What both loaders offer ``source``: compose, construct, dispose."""

    def __init__(self) -> None:
        _StrictComposer.__init__(self)
        _StrictConstructor.__init__(self)
        _StrictResolver.__init__(self)

    def dispose(self) -> None:
        """Drop the parser's state (it holds cycles through bound methods)."""


class ReferenceLoader(Reader, Scanner, Parser, StrictLoader):
    """PyYAML's pure-Python scanner and parser: defines the language and its errors."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)  # checks for unprintable characters up front
        Scanner.__init__(self)
        Parser.__init__(self)
        StrictLoader.__init__(self)

    def dispose(self) -> None:
        """Drop the parser's state (it holds cycles through bound methods)."""
        Parser.dispose(self)


def _fast_loader() -> Callable[[str], StrictLoader] | None:
    if not yaml.__with_libyaml__:
        return None
    from yaml._yaml import CParser

    class _FastLoader(StrictLoader, CParser):
        def __init__(self, stream: str) -> None:
            if _DIVERGENT.search(stream) or Reader.NON_PRINTABLE.search(stream):
                raise NotPlain("characters libyaml reads differently")
            CParser.__init__(self, stream)
            StrictLoader.__init__(self)
            self._text = stream
            self._flow_depth = 0

        def compose_document(self) -> Node | None:
            start = self.peek_event()
            if isinstance(start, DocumentStartEvent) and (start.version or start.tags):
                raise NotPlain("directives")
            return super().compose_document()

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            # Composer.compose_node without what plain text never has (anchors, aliases,
            # tags, path resolvers); this runs once per node of a large policy.
            event = self.peek_event()
            if type(event) is ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    raise NotPlain("anchor or tag")  # names and "!" read differently
                if event.style:
                    if event.style in "|>" and not (
                            event.start_mark is not None
                            and _BLOCK_HEADER.match(self._text, event.start_mark.index)):
                        raise NotPlain("block scalar header")
                elif self._flow_depth and "?" in event.value:
                    raise NotPlain("'?' in a flow collection")  # PyYAML ends the scalar
                return self.compose_scalar_node(None)  # type: ignore[arg-type]
            if not isinstance(event, CollectionStartEvent) or event.anchor is not None \
                    or event.tag is not None:
                raise NotPlain("alias, anchor or tag")
            flow = bool(event.flow_style)
            self._flow_depth += flow
            try:
                if isinstance(event, SequenceStartEvent):
                    return self.compose_sequence_node(None)  # type: ignore[arg-type]
                return self.compose_mapping_node(None)  # type: ignore[arg-type]
            finally:
                self._flow_depth -= flow

        def construct_document(self, node: Node) -> Any:
            # What SafeConstructor builds from a tree without anchors, aliases or tags,
            # with the strict checks of construct_mapping, without its machinery for
            # shared and recursive nodes: a third of the load time of a large policy.
            if isinstance(node, ScalarNode):
                return node.value if node.tag == _STR_TAG else self.construct_object(node)
            if isinstance(node, MappingNode):
                self.check_keys(node)
                return {key.value: self.construct_document(value)
                        for key, value in node.value}
            return [self.construct_document(child) for child in node.value]

        def dispose(self) -> None:
            """Drop the parser's state."""
            CParser.dispose(self)

    return _FastLoader


FastLoader = _fast_loader()
"""libyaml's scanner and parser under the strict composer, or ``None`` without libyaml."""
