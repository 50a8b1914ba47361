"""The sections (models) of a policy or test file, found by path, and where a key belongs.

For an unknown key, a hint that a reader can act on: the section it belongs to when it is a
key of a nearby one (``ttl`` dedented out of ``grant`` into the rule: "'ttl' belongs under
'grant'"), else the closest key of its own section ("did you mean 'account'?").
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

Path = Sequence[str | int]


def close_key(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``name`` most looks like a misspelling of, if any does."""
    found = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1)
    return found[0] if found else None


class Sections:
    """The models of one document type, reached by an error's ``loc``."""

    def __init__(self, document: type[BaseModel]) -> None:
        self.document = document

    def model_at(self, path: Path) -> type[BaseModel] | None:
        """The model whose mapping ``path`` names (``("rules", 0, "grant")`` -> GrantSpec)."""
        current: list[object] = [self.document]
        for part in path:
            current = [found for annotation in current for found in _step(annotation, part)]
        models = [m for annotation in current for m in _models(annotation)]
        return models[0] if models else None


def keys_of(section: type[BaseModel]) -> dict[str, object]:
    """A section's keys as written (aliases) and their annotations."""
    return {info.alias or name: info.annotation for name, info in section.model_fields.items()}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What to do about an unknown key: ``hint`` for people; for tools, the sections it
    belongs in (dotted paths, "" for the top level) and the key it may be a misspelling of."""

    hint: str
    belongs_in: tuple[str, ...] = ()
    did_you_mean: str = ""

    def details(self) -> dict[str, object]:
        """The non-empty fields for tools, without the hint."""
        found: dict[str, object] = {}
        if self.belongs_in:
            found["belongs_in"] = list(self.belongs_in)
        if self.did_you_mean:
            found["did_you_mean"] = self.did_you_mean
        return found


def placement(sections: Sections, loc: Path) -> Suggestion | None:
    """What to suggest for the unknown key ``loc[-1]`` in the section at ``loc[:-1]``."""
    key, here = str(loc[-1]), tuple(loc[:-1])
    section = sections.model_at(here)
    if section is None:
        return None
    below = _children_with(section, key)
    if below:
        return Suggestion(f"{key!r} belongs under {_either(below)}",
                          belongs_in=tuple(dotted((*here, name)) for name in below))
    parent_path = _parent(sections, here)
    if parent_path is not None:
        parent = sections.model_at(parent_path)
        assert parent is not None  # _parent only returns paths of sections
        if key in keys_of(parent):
            return Suggestion(f"{key!r} belongs one level up, in "
                              f"{dotted(parent_path) or 'the top level'}",
                              belongs_in=(dotted(parent_path),))
        under = here[len(parent_path)]
        beside = [name for name in _children_with(parent, key) if name != under]
        if beside:
            return Suggestion(f"{key!r} belongs under {_either(beside)}, not under {under!r}",
                              belongs_in=tuple(dotted((*parent_path, name)) for name in beside))
    close = close_key(key, list(keys_of(section)))
    if close:
        return Suggestion(f"did you mean {close!r}?", did_you_mean=close)
    for name, child in _children(section):
        close = close_key(key, list(keys_of(child)))
        if close:
            return Suggestion(f"did you mean {close!r} (under {name!r})?",
                              belongs_in=(dotted((*here, name)),), did_you_mean=close)
    return None


def dotted(path: Path) -> str:
    """``("rules", 0, "grant")`` -> ``rules[0].grant``; "" for the document itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _either(names: Sequence[str]) -> str:
    return " or ".join(repr(name) for name in names)


def _parent(sections: Sections, path: Path) -> Path | None:
    """The nearest enclosing section's path (list items and mapping entries are not ones)."""
    for end in range(len(path) - 1, -1, -1):
        if sections.model_at(path[:end]) is not None:
            return path[:end]
    return None


def _children(section: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """Keys whose value is a section (or a list of them), with that section."""
    found = []
    for name, annotation in keys_of(section).items():
        for child in _models(annotation, through_lists=True):
            found.append((name, child))
    return found


def _children_with(section: type[BaseModel], key: str) -> list[str]:
    return list(dict.fromkeys(name for name, child in _children(section)
                              if key in keys_of(child)))


def _members(annotation: object) -> list[object]:
    """``annotation`` without ``Annotated`` and ``Optional``/union wrapping."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _models(annotation: object, *, through_lists: bool = False) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            found.append(member)
        elif through_lists and typing.get_origin(member) in (tuple, list):
            found.extend(_models(typing.get_args(member)[0]))
    return found


def _step(annotation: object, part: str | int) -> list[object]:
    """What one ``loc`` part leads to inside ``annotation``."""
    found: list[object] = []
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str) and part in keys_of(member):
                found.append(keys_of(member)[part])
        elif origin in (tuple, list) and isinstance(part, int):
            found.append(typing.get_args(member)[0])
        elif isinstance(origin, type) and issubclass(origin, Mapping) and isinstance(part, str):
            found.append(typing.get_args(member)[1])
    return found
