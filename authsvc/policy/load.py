"""Loading policy files into one ``Policy``. The only module in ``policy`` that does I/O.

Each path is a YAML file or a directory; a directory contributes its ``*.yaml`` / ``*.yml``
files (not recursive; names starting with ``.`` skipped, as editors and Kubernetes ConfigMap
mounts put scratch files and ``..data`` links there), sorted by name. Documents compose into one
policy: rules are concatenated, rule ids must be unique across all files, and ``defaults`` may
appear in at most one file. Every problem is a ``PolicyError`` naming file, line and column
(a ``Problem`` with a code; an ``InputFault`` when a path is missing, unreadable, or holds no
policy files; ``Problems`` when there are several: every file's own, then every rule id and
``defaults`` defined again, so that one run shows them all).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from authsvc.errors import PolicyError
from authsvc.policy.diagnostics import validation_error
from authsvc.policy.model import Defaults, Policy, PolicyDocument
from authsvc.policy.problems import InputFault, Problem, Problems, each
from authsvc.policy.source import (
    DuplicateDefinitionError,
    Location,
    ParsedSource,
    line_column,
    locate,
    parse_yaml,
)

POLICY_SUFFIXES = (".yaml", ".yml")
# A policy is reviewed by humans; anything this large is a mistake or an attack on the parser.
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class _Document:
    parsed: ParsedSource
    policy: PolicyDocument


def load_policy(paths: Sequence[Path]) -> Policy:
    """Load and compose the policy files at ``paths`` (files or directories, in this order).

    Besides the content digest (``revision``), ``git_revision`` names the commit the files
    come from when they live in a git work tree (``<sha>``, or ``<sha>+dirty`` when a file
    differs from it), so a decision's revision can be traced to a reviewed change.
    """
    if not paths:
        raise InputFault("no policy paths given", code="no_paths")
    files = policy_files(paths)
    with _collector_paused():
        policy = _compose([_read(path) for path in files])
    return policy.model_copy(update={"git_revision": git_revision(files)})


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep CPython's cyclic GC from running while a policy is built.

    Loading makes hundreds of thousands of long-lived objects (about 60 per rule) and no
    cyclic garbage, but the collector's full passes walk all of them again and again as the
    heap grows: with it on, loading 10k rules took 6.8 s of CPU instead of 2.5 s.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def git_revision(files: Sequence[Path]) -> str:
    """The git commit the policy files belong to, "+dirty" if they differ; "" otherwise."""
    if not files:
        return ""
    folder = str(files[0].resolve().parent)
    try:
        head = _git(folder, "rev-parse", "--verify", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--",
                       *(str(path.resolve()) for path in files))
    except (OSError, subprocess.SubprocessError):
        return ""  # no git, not a work tree, or no commit yet: the digest stands alone
    return f"{head}+dirty" if changed else head


def _git(folder: str, *args: str) -> str:
    done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,  # noqa: S603, S607
                          timeout=5, check=True)
    return done.stdout.strip()


def rule_locations(policy: Policy, path: Sequence[str | int] = ()) -> dict[str, Location]:
    """Where each rule of ``policy`` is written, or ``path`` inside it (``("grant",
    "account")``), read again from ``policy.sources``; for tools that report on a loaded
    policy. A source that no longer reads as it did is left out."""
    found: dict[str, Location] = {}
    for name in policy.sources:
        try:
            document = _document(_read(Path(name)))
        except PolicyError:
            continue
        for index, rule in enumerate(document.policy.rules):
            found[rule.id] = _where(document, ("rules", index, *path))
    return found


def load_policy_text(text: str, name: str = "<string>") -> Policy:
    """Load a single policy document from ``text``; ``name`` appears in errors."""
    with _collector_paused():
        return _compose([_Source(name=name, data=text.encode())])


def revision_of(sources: Sequence[bytes]) -> str:
    """SHA-256 (hex) over the SHA-256 digests of each source's bytes, in load order.

    Hashing digests rather than raw concatenated bytes keeps file boundaries unambiguous;
    reproduce with ``for f in FILES; do sha256sum "$f" | cut -c1-64; done | xxd -r -p | sha256sum``.
    """
    return hashlib.sha256(b"".join(hashlib.sha256(data).digest() for data in sources)).hexdigest()


def policy_files(paths: Sequence[Path], *, what: str = "policy") -> list[Path]:
    """The files ``paths`` stand for: a file itself, a directory its ``*.yaml``/``*.yml``
    files (not recursive, no dot files), sorted by name. ``what`` names them in errors
    (``policy``, ``test``): test files are found by the same rule."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                found = sorted(
                    child for child in path.iterdir()
                    if child.suffix in POLICY_SUFFIXES and not child.name.startswith(".")
                    and child.is_file()
                )
            except OSError as exc:
                raise InputFault(f"cannot read directory: {exc.strerror}",
                                 code="file_unreadable", file=str(path)) from exc
            if not found:
                raise InputFault(f"directory holds no *.yaml or *.yml {what} files",
                                 code="directory_empty", file=str(path))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputFault(f"no such {what} file or directory", code="file_not_found",
                             file=str(path))
    return files


def _read(path: Path) -> _Source:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputFault(f"cannot read policy file: {exc.strerror}", code="file_unreadable",
                         file=str(path)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise Problem(f"policy file is larger than {MAX_FILE_BYTES} bytes",
                      code="file_too_large", file=str(path))
    return _Source(name=str(path), data=data)


def _compose(sources: Sequence[_Source]) -> Policy:
    documents, problems = _documents(sources)
    # Every problem at once, as `policy check` promises: each file's own, then whatever the
    # files that did load define twice (two copies of one file: its rule ids and defaults).
    problems += _duplicates(documents)
    if problems:
        raise problems[0] if len(problems) == 1 else Problems(problems)
    return Policy(
        defaults=next((d.policy.defaults for d in documents if d.policy.defaults), Defaults()),
        rules=tuple(rule for document in documents for rule in document.policy.rules),
        revision=revision_of([source.data for source in sources]),
        sources=tuple(source.name for source in sources),
    )


def _documents(sources: Sequence[_Source]) -> tuple[list[_Document], list[PolicyError]]:
    """The documents that load, and the problems of those that do not."""
    documents: list[_Document] = []
    problems: list[PolicyError] = []
    for source in sources:
        try:
            documents.append(_document(source))
        except PolicyError as exc:
            problems.extend(each(exc))
    return documents, problems


def _document(source: _Source) -> _Document:
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = source.data[: exc.start].decode("utf-8", "replace")
        line, column = line_column(before, len(before))
        raise Problem("policy file is not valid UTF-8", code="encoding_invalid",
                      file=source.name, line=line, column=column) from exc
    parsed = parse_yaml(text, source.name)
    if parsed.root is None:
        raise Problem("policy file holds no document", code="document_empty",
                      file=source.name, hint="start with apiVersion: authsvc/v1 and kind: Policy")
    try:
        return _Document(parsed=parsed, policy=PolicyDocument.model_validate(parsed.data))
    except ValidationError as exc:
        raise validation_error(exc, parsed.root, source.name) from exc


def _where(document: _Document, path: Sequence[str | int], *, key: bool = False) -> Location:
    assert document.parsed.root is not None  # _document refuses empty files
    node = locate(document.parsed.root, path, key=key)
    return Location.of(document.parsed.name, node.start_mark)


def _duplicates(documents: Sequence[_Document]) -> list[PolicyError]:
    """A rule id or ``defaults`` defined again, each located where it is defined again, in
    file order and, within a file, line order."""
    found: list[PolicyError] = []
    first_id: dict[str, Location] = {}
    first_defaults: Location | None = None
    for document in documents:
        here: list[DuplicateDefinitionError] = []
        if document.policy.defaults is not None:
            at = _where(document, ("defaults",), key=True)
            if first_defaults is not None:
                here.append(DuplicateDefinitionError(
                    "defaults given in more than one file", at=at, first=first_defaults,
                    code="duplicate_defaults", hint=_same_file(at, first_defaults)))
            first_defaults = first_defaults or at
        for index, rule in enumerate(document.policy.rules):
            at = _where(document, ("rules", index, "id"))
            if rule.id in first_id:
                here.append(DuplicateDefinitionError(
                    f"duplicate rule id {rule.id!r}", at=at, first=first_id[rule.id],
                    code="duplicate_rule_id", hint=_same_file(at, first_id[rule.id])))
            first_id.setdefault(rule.id, at)
        found.extend(sorted(here, key=lambda problem: (problem.line, problem.column)))
    return found


def _same_file(at: Location, first: Location) -> str:
    """A hint when both definitions are one place: the same file was given twice."""
    return (f"{at.file} is loaded twice: given twice, or both as a file and inside a "
            "directory") if at == first else ""
