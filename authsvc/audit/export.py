"""``audit export``: a period's records plus a manifest an auditor can re-verify.

The export holds the records of one or more chains for ``[from, to)`` in ``records.jsonl``
(the records exactly as stored) or ``records.csv`` (a flat view with ``event_id`` and
``record_hash`` to match rows back), and ``MANIFEST.json``: the query, row counts, per
chain the first and last ``seq`` and the head before the first record (the anchor), the
SHA-256 of every output file, and the source chain's verification result.

Period selection keeps the chain contiguous: from the first record at or after ``from``
up to, not including, the first record at or after ``to``. An unfiltered JSON-lines
export then runs on to the first signed checkpoint after the period (``extended_to``), so
that a signature covers every exported record; ``verify --manifest`` re-checks the whole
segment from the anchor. Filtered exports are a selection: each record's hash is still
checked, the continuity only on the source.

Records are read by their documented field types (``authsvc.audit.fields``): a member of
the wrong type reads as absent and is counted per chain in the manifest
(``malformed_fields``). An export that fails part way removes what it wrote, so it can be
run again without ``--force``.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import ChainHead, canonical
from authsvc.audit.csvview import HEADER, row
from authsvc.audit.fields import malformed, obj, superseding, text, texts, timestamp
from authsvc.audit.keychange import changes_of
from authsvc.audit.manifest import MANIFEST, chain_summary, sha256_file
from authsvc.audit.verify import expand, verify
from authsvc.errors import AuditError, ConfigError

EXPORT_FILES = (MANIFEST, "records.jsonl", "records.csv")
FILTER_KEYS = ("type", "decision", "reason", "instance", "account", "principal", "source",
               "rule", "client_host", "key_role", "superseded")
BOOLEAN_FILTERS = {"superseded": ("true", "false")}


@dataclass(frozen=True, slots=True)
class Query:
    """What to export; ``filters`` maps a key to accepted values (AND across keys)."""

    start: datetime
    end: datetime
    format: str = "jsonl"
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "format": self.format,
                "filters": {k: list(v) for k, v in sorted(self.filters.items())}}


def parse_filters(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``["decision=deny", "reason=x", "reason=y"]`` -> {decision: (deny,), reason: (x, y)}."""
    found: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise AuditError(f"filter {item!r}: use KEY=VALUE with KEY one of "
                             + ", ".join(FILTER_KEYS))
        if key in BOOLEAN_FILTERS and value not in BOOLEAN_FILTERS[key]:
            raise AuditError(f"filter {item!r}: {key} is true or false")
        found[key] = (*found.get(key, ()), value)
    return found


def _field(record: dict[str, Any], key: str, superseded: frozenset[str]) -> list[str]:
    """The values ``key`` matches against; none for a member of the wrong type."""
    identity, client = obj(record, "identity"), obj(record, "client")
    values: dict[str, Any] = {
        "principal": identity.get("principal"), "source": identity.get("source"),
        "client_host": client.get("host"), "rule": texts(record, "rule_ids"),
        "key_role": [change.role for change in changes_of(record)],
        "superseded": "true" if text(record, "event_id") in superseded else "false"}
    value = values[key] if key in values else text(record, key)
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, str) else []


def matches(record: dict[str, Any], filters: dict[str, tuple[str, ...]],
            superseded: frozenset[str] = frozenset()) -> bool:
    """AND across keys, OR within one; ``superseded``: the allows error records replace."""
    return all(set(_field(record, key, superseded)) & set(accepted)
               for key, accepted in filters.items())


def superseded_ids(files: list[Path]) -> frozenset[str]:
    """The event ids of the allows that error records of this chain supersede.

    The error record follows its allow, possibly past the end of the period (and past the
    file): the whole chain is read, parsing only lines that mention ``supersedes``.
    """
    found = set()
    for path in files:
        with path.open("rb") as handle:
            for raw in handle:
                if b'"supersedes"' not in raw or not raw.endswith(b"\n"):
                    continue
                with contextlib.suppress(ValueError, RecursionError):
                    record = json.loads(raw)
                    if isinstance(record, dict) and superseding(record):
                        found.add(superseding(record))
    return frozenset(found)


def chain_sources(paths: list[Path]) -> list[list[Path]]:
    """One file list per chain: each path is a chain, or a folder of chain folders. A
    folder holding both audit files and chain folders is refused (ConfigError): reading
    either alone would leave the other unchecked."""
    chains: list[list[Path]] = []
    for path in paths:
        files = expand([path])
        refuse_mixed(path, files)
        if not files and path.is_dir():
            chains.extend(expand([sub]) for sub in sorted(path.iterdir()) if sub.is_dir()
                          and expand([sub]))
        elif files:
            chains.append(files)
    return chains


def anchored_chains(chains: list[Any], anchor: ChainHead | None) -> None:
    """ConfigError when an ``anchor`` (one trimmed chain's start) meets several chains."""
    if anchor is not None and len(chains) > 1:
        raise ConfigError("--anchor belongs to one chain: name that chain's files or folder")


def refuse_mixed(path: Path, files: list[Path]) -> None:
    """ConfigError when folder ``path`` holds audit files (``files``) beside chain folders."""
    # An export's folder (it holds its MANIFEST.json) beside the chain is not a chain.
    if files and path.is_dir() and any(
            sub.is_dir() and expand([sub]) and not (sub / "MANIFEST.json").exists()
            for sub in path.iterdir()):
        raise ConfigError(f"{path} holds audit files and also folders of audit files; name "
                          "the chain (its files, or its folder) or the folder of chains, not "
                          "both in one folder")


@dataclass
class ChainCut:
    """The part of one chain inside the period (plus its run-on to a checkpoint)."""

    instance: str = ""
    anchor_seq: int | None = None
    anchor_hash: str = ""
    first_seq: int | None = None
    last_seq: int | None = None
    in_period: int = 0
    exported: int = 0
    extended_to: int | None = None
    last_hash: str = ""
    malformed: Counter[str] = field(default_factory=Counter)  # member -> records


def _lines(files: list[Path], on_bytes: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open("rb") as handle:
            for raw in handle:
                on_bytes(len(raw))
                if raw.endswith(b"\n"):
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and isinstance(record.get("seq"), int):
                        yield record


def cut_chain(files: list[Path], query: Query, emit: Callable[[dict[str, Any]], None],
              on_bytes: Callable[[int], None]) -> ChainCut:
    """Walk one chain, emit the selected records, return where the cut lies."""
    cut, run_on = ChainCut(), not query.filters and query.format == "jsonl"
    superseded = superseded_ids(files) if "superseded" in query.filters else frozenset()
    state = "before"
    for record in _lines(files, on_bytes):
        cut.instance = cut.instance or text(record, "instance")  # named when empty too
        when = timestamp(record)
        if state == "before" and when is not None and when >= query.start:
            state = "in"
            cut.anchor_seq, cut.anchor_hash = record["seq"] - 1, str(record.get("prev_hash"))
        if state == "in" and when is not None and when >= query.end:
            if not run_on or cut.first_seq is None:
                break
            state = "after"
        if state == "before":
            continue
        _take(cut, record, query, emit, in_period=state == "in", superseded=superseded)
        if state == "after" and record.get("type") == cp.CHECKPOINT_TYPE:
            cut.extended_to = record["seq"]
            break
    return cut


def _take(cut: ChainCut, record: dict[str, Any], query: Query,
          emit: Callable[[dict[str, Any]], None], *, in_period: bool,
          superseded: frozenset[str]) -> None:
    cut.in_period += in_period
    cut.malformed.update(malformed(record))
    if matches(record, query.filters, superseded):
        emit(record)
        cut.exported += 1
        cut.first_seq = record["seq"] if cut.first_seq is None else cut.first_seq
        cut.last_seq, cut.last_hash = record["seq"], str(record.get("record_hash"))


def export(paths: list[Path], query: Query, out: Path, *, tool_version: str,
           keys: frozenset[str] | None = None, check: cp.SignatureCheck | None = None,
           progress: Callable[[int], None] | None = None,
           replace: bool = False, anchor: ChainHead | None = None) -> dict[str, Any]:
    """Write the export into ``out`` and return its manifest (also written there).

    ``out`` must be new or empty: evidence already there is never overwritten, unless
    ``replace``, which removes an earlier export's files (and only those) first. When the
    export fails part way, its files (and ``out``, if it made it) are removed again.
    ``anchor``: the head the source's first record follows (one chain trimmed by retention).
    """
    chains = chain_sources(paths)
    if not chains:
        raise AuditError("no audit files found in " + ", ".join(str(p) for p in paths))
    anchored_chains(chains, anchor)
    made = not out.exists()
    _claim_out(out, [f for files in chains for f in files], replace=replace)
    try:
        return _write(chains, query, out, tool_version=tool_version, keys=keys, check=check,
                      progress=progress or (lambda _: None), anchor=anchor)
    except BaseException:  # an interrupt too: a half export must not look like evidence
        for name in EXPORT_FILES:
            (out / name).unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _write(chains: list[list[Path]], query: Query, out: Path, *, tool_version: str,
           keys: frozenset[str] | None, check: cp.SignatureCheck | None,
           progress: Callable[[int], None], anchor: ChainHead | None) -> dict[str, Any]:
    name = f"records.{query.format}"
    cuts, reports = [], []
    with (out / name).open("w", encoding="utf-8", newline="") as handle:
        emit = _writer(handle, query.format)
        for files in chains:
            cuts.append(cut_chain(files, query, emit, progress))
            reports.append(verify(files, keys=keys, check=check, anchor=anchor))
    manifest = {
        "kind": "authsvc-audit-export", "version": 1, "tool_version": tool_version,
        "query": query.as_dict(), "sources": [[p.name for p in files] for files in chains],
        "rows": sum(c.exported for c in cuts),
        "chains": [{**chain_summary(c, r, signatures=keys is not None),
                    "malformed_fields": dict(sorted(c.malformed.items()))}
                   for c, r in zip(cuts, reports, strict=True)],
        "files": [{"name": name, "sha256": sha256_file(out / name),
                   "bytes": (out / name).stat().st_size,
                   "rows": sum(c.exported for c in cuts)}],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _claim_out(out: Path, sources: list[Path], *, replace: bool) -> None:
    # records.jsonl next to the audit files would be read as part of the chain next time
    if out.resolve() in {f.resolve().parent for f in sources}:
        raise AuditError(f"export directory {out} holds the audit files being exported; "
                         "write the export somewhere else")
    if out.exists() and not out.is_dir():
        raise AuditError(f"export directory {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not replace:
            raise AuditError(f"export directory {out} is not empty; an export never "
                             "overwrites earlier evidence: choose a new directory, or replace "
                             "the export in it with --force")
        for name in EXPORT_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _writer(handle: TextIO, fmt: str) -> Callable[[dict[str, Any]], None]:
    if fmt == "jsonl":
        def write_json(record: dict[str, Any]) -> None:
            handle.write(canonical(record).decode() + "\n")  # the bytes the chain hashed
        return write_json
    if fmt != "csv":
        raise AuditError(f"unknown export format {fmt!r}: jsonl or csv")
    import csv

    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(HEADER)
    return lambda record: writer.writerow(row(record))
