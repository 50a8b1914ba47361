"""Strict YAML (``source.parse_yaml``): anchors, aliases and explicit tags are refused with a
code, located, in policy files and in PolicyTest files alike; untagged scalars read as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.errors import PolicyError
from authsvc.policy.problems import code_of
from authsvc.policy.source import _parse, parse_yaml
from authsvc.policy.testing import read_test_file
from authsvc.policy.yaml_loaders import ReferenceLoader, Refused

REFUSED = [
    # (text, code, line, column): where the anchor, alias or tag starts
    ("ttl: !!int 1:30\n", "yaml_tag", 1, 6),          # YAML 1.1 sexagesimal: 90
    ("ttl: !!int 010\n", "yaml_tag", 1, 6),           # YAML 1.1 octal: 8
    ("equals: !!bool no\n", "yaml_tag", 1, 9),        # YAML 1.1: False
    ("ttl: !!float 1e3\n", "yaml_tag", 1, 6),
    ("at: !!timestamp 2026-01-01\n", "yaml_tag", 1, 5),
    ("data: !!binary aGVsbG8=\n", "yaml_tag", 1, 7),
    ("subject: !!str UABC\n", "yaml_tag", 1, 10),     # harmless here, refused all the same
    ("subject: ! UABC\n", "yaml_tag", 1, 10),         # the non-specific tag
    ("subject: !local UABC\n", "yaml_tag", 1, 10),
    ("%TAG !e! tag:example.com,2000:\n---\nsubject: !e!x UABC\n", "yaml_tag", 3, 10),
    ("grant: !!map {account: A}\n", "yaml_tag", 1, 8),
    ("allow: !!seq [a.b]\n", "yaml_tag", 1, 8),
    ("allow: !!set {a.b}\n", "yaml_tag", 1, 8),
    ("a: 1\nb:\n  - !!str x\n", "yaml_tag", 3, 5),
    ("!!map\na: b\n", "yaml_tag", 1, 1),              # on the document itself
    ("? !!str k\n: v\n", "yaml_tag", 1, 3),           # on a key
    ("a: &x 1\n", "yaml_anchor", 1, 4),               # anchors, even never aliased
    ("a: &x {b: c}\n", "yaml_anchor", 1, 4),
    ("a: &x\n  - b\n", "yaml_anchor", 1, 4),
    ("a: b\nc: &x 'd'\n", "yaml_anchor", 2, 4),
    ("a: &x !!int 5\n", "yaml_anchor", 1, 4),
    ("a: *x\n", "yaml_refused", 1, 4),                # aliases
]


@pytest.mark.parametrize(("text", "code", "line", "column"), REFUSED)
def test_anchors_aliases_and_tags_are_refused_and_located(text: str, code: str, line: int,
                                                          column: int) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml(text, "p.yaml")
    assert (code_of(caught.value), caught.value.file, caught.value.line,
            caught.value.column) == (code, "p.yaml", line, column)
    assert caught.value.hint


@pytest.mark.parametrize(("text", "code", "line", "column"), REFUSED)
def test_the_reference_loader_refuses_them_itself(text: str, code: str, line: int,
                                                  column: int) -> None:
    # parse_yaml's fast path leaves these to the reference; without libyaml it is all there is.
    with pytest.raises(Refused) as caught:
        _parse(ReferenceLoader, text, "p.yaml")
    mark = caught.value.problem_mark
    assert (caught.value.code, mark.line + 1, mark.column + 1) == (code, line, column)


@pytest.mark.parametrize(("text", "data"), [
    ("a: '!!int 1:30'\n", {"a": "!!int 1:30"}),
    ('a: "&x"\n', {"a": "&x"}),
    ("a: x!y&z*\n", {"a": "x!y&z*"}),
    ("a: 90\nb: true\nc: 1:30\nd: '010'\n", {"a": 90, "b": True, "c": "1:30", "d": "010"}),
    ("a: [b, 'c', \"d\", {e: f}]\n", {"a": ["b", "c", "d", {"e": "f"}]}),
    ("a: |\n  x\nb: >-\n  y\n", {"a": "x\n", "b": "y"}),
])
def test_untagged_scalars_read_as_before(text: str, data: object) -> None:
    assert parse_yaml(text, "p.yaml").data == data
    assert _parse(ReferenceLoader, text, "p.yaml").data == data  # parse_yaml may take libyaml


def test_test_files_are_read_as_strictly(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("apiVersion: authsvc/v1\nkind: PolicyTest\npolicy: [p.yaml]\ncases:\n"
                    "  - name: c\n    identity: {source: nkey, subject: U}\n"
                    "    now: !!timestamp 2026-03-08T07:50:00Z\n"
                    "    expect: {decision: deny, reason: no_matching_rule}\n")
    with pytest.raises(PolicyError) as caught:
        read_test_file(path)
    assert (code_of(caught.value), caught.value.file, caught.value.line,
            caught.value.column) == ("yaml_tag", str(path), 7, 10)
