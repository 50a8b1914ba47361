"""libyaml's fast loader against the pure-Python reference it stands in for.

Whatever the fast loader accepts, the reference must accept too, with the same data and the
same node positions; everything else goes to the reference (``source.parse_yaml``). The
inputs are the policy test data, snippets where the two parsers are known to differ, and a
seeded stream of random YAML-ish text.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from yaml.nodes import Node

from authsvc.errors import PolicyError
from authsvc.policy.source import ParsedSource, _parse, parse_yaml
from authsvc.policy.yaml_loaders import FastLoader, NotPlain, ReferenceLoader

pytestmark = pytest.mark.skipif(FastLoader is None, reason="PyYAML built without libyaml")

DATA = Path(__file__).parents[2] / "data"

# Where libyaml alone accepts, or reads differently; the fast loader must leave them alone.
DIVERGENT = [
    "a: \t b\n",                   # tab as a separator
    "a: x\u2028b: y\n",            # LINE SEPARATOR is a line break to PyYAML only
    "a: x\x85b: y\n",              # so is NEL
    "k: \ufeff---@-~\n",           # a byte-order mark after the start
    "a: &b c\n",                   # anchors (names differ) and aliases
    "a: [x, *b]\n",
    "#1]a\n\n  !\n",               # a bare "!" tag
    "a: !!str 5\n",
    "a: |#\n  x\n",                # block header without a space before the comment
    "a: [.-?|b]\n",                # "?" inside a plain scalar in a flow collection
    "[... ?]\n",
    "%YAML 1.1\n---\na: b\n",      # directives
]
SAME = [
    "a: 1\r\nb: [x, y]\r\n",
    "d: héllo wörld 😀 中文\nx: {k: v, m: [1, 2]}\n",
    "s: |\n  line1\n  line2\nt: >-\n  folded\n  text\nu: |2\n   x\n",
    "a: b: c\n",
    "a: [1, 2\n",
    "a: ~\n",
    "a:\n",
    "a: b\n---\nc: d\n",
    "a: 1\na: 2\n",
    "a: &x 1\nb: *x\n",
    "<<: {a: 1}\n",
    "? [a, b]\n: c\n",
    "",
    "# only a comment\n",
    "a: 'x?y'\nb: [\"p?q\"]\nc: x?y\n",
]
ATOMS = ["a", "b1", "orders.*", "_INBOX.>", "'q?x'", '"d\\"q"', "[x, y]", "{k: v}", "|", ">-",
         "|2", "x#y", "x #c", "- ", "? ", ": ", "&a", "*a", "!!str", "é", "1:30", "0100",
         "true", "NO", "~", "%", "@", "`", ",", "[", "]", "{", "}", ":", "?", "#", "-", "...",
         "---", "' '", " ", "  ", "\\", "\r", "\t", "\u2028"]


def _random_texts(count: int) -> list[str]:
    rnd = random.Random(4)
    texts = []
    for _ in range(count):
        lines = []
        for _ in range(rnd.randint(1, 5)):
            indent = " " * rnd.choice([0, 0, 1, 2, 3, 4])
            value = "".join(rnd.choice(ATOMS) for _ in range(rnd.randint(0, 3)))
            lines.append(indent + rnd.choice(["k: ", "- ", "", '"q": ']) + value)
        texts.append("\n".join(lines) + rnd.choice(["", "\n", "\r\n"]))
    return texts


def _data_texts() -> list[str]:
    return [path.read_text(encoding="utf-8-sig") for path in sorted(DATA.rglob("*.y*ml"))]


def _parsed(loader: object, text: str) -> ParsedSource | None:
    try:
        return _parse(loader, text, "t")  # type: ignore[arg-type]
    except (yaml.YAMLError, ValueError):
        return None


def _positions(node: Node | None) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    stack = [node] if node is not None else []
    while stack:
        here = stack.pop()
        mark = here.start_mark
        found.append((type(here), here.tag, mark.line, mark.column, mark.index))
        if isinstance(here.value, list):
            for child in reversed(here.value):
                stack.extend(reversed(child) if isinstance(child, tuple) else [child])
        else:
            found.append((here.value,))
    return found


def _check_alike(text: str) -> None:
    fast = _parsed(FastLoader, text)
    if fast is None:
        return
    reference = _parsed(ReferenceLoader, text)
    assert reference is not None, f"libyaml accepted {text!r}, the reference refuses it"
    assert fast.data == reference.data, text
    assert _positions(fast.root) == _positions(reference.root), text


@pytest.mark.parametrize("text", DIVERGENT + SAME + _data_texts())
def test_what_the_fast_loader_accepts_the_reference_reads_alike(text: str) -> None:
    _check_alike(text)


def test_random_text_the_fast_loader_accepts_the_reference_reads_alike() -> None:
    for text in _random_texts(5000):
        _check_alike(text)


@pytest.mark.parametrize("text", DIVERGENT)
def test_text_the_parsers_read_differently_is_left_to_the_reference(text: str) -> None:
    with pytest.raises(NotPlain):
        _parse(FastLoader, text, "t")  # type: ignore[arg-type]


def test_policy_files_take_the_fast_path() -> None:
    for path in sorted((DATA / "policy" / "policies").rglob("[!.]*.y*ml")):
        assert _parsed(FastLoader, path.read_text()) is not None, path


def test_a_tab_libyaml_would_accept_is_still_refused_and_located() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml("a: 1\nb: \t c\n", "t.yaml")
    assert (caught.value.file, caught.value.line, caught.value.column) == ("t.yaml", 2, 4)


def test_errors_libyaml_finds_are_reported_as_the_reference_reports_them() -> None:
    text = "a:\n  - x\n  y: [1, 2\n"
    with pytest.raises(yaml.YAMLError) as reference:
        _parse(ReferenceLoader, text, "t")  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as caught:
        parse_yaml(text, "t.yaml")
    mark = reference.value.problem_mark  # type: ignore[attr-defined]
    assert (caught.value.line, caught.value.column) == (mark.line + 1, mark.column + 1)
