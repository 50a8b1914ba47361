"""An export's ``MANIFEST.json``: what it claims, and re-checking an export against it.

``check`` recomputes every file's SHA-256 and row count, every JSON-lines record's
``record_hash``, and, for an unfiltered JSON-lines export, the whole chain segment from the
manifest's anchor (``seq`` and hash of the record before the first one) through its last
record, checkpoint signatures included when keys are given. Problems are reported as
stable codes (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import ChainHead, loads_strict, record_hash, stored_record
from authsvc.audit.verify import Report, Result, verify

MANIFEST = "MANIFEST.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chain_summary(cut: Any, report: Report, *, signatures: bool) -> dict[str, Any]:
    """One chain's entry in the manifest: the cut exported and the source's verification."""
    first = report.first_break
    return {
        "instance": cut.instance, "anchor": {"seq": cut.anchor_seq, "hash": cut.anchor_hash},
        "first_seq": cut.first_seq, "last_seq": cut.last_seq, "last_hash": cut.last_hash,
        "records_in_period": cut.in_period, "exported": cut.exported,
        "extended_to_checkpoint": cut.extended_to,
        "source_verification": {
            "result": report.result.value,
            "records": report.records, "first_seq": report.first_seq,
            "last_seq": report.head.seq if report.records else None,
            "gaps": [{"from": a, "to": b} for a, b in report.gaps],
            "breaks": len(report.breaks),
            "first_break": None if first is None else {
                "kind": first.kind.value, "file": first.at.file, "line": first.at.line,
                "seq": first.at.seq},
            "checkpoints": report.checkpoints,
            "checkpoints_verified": report.checkpoints_verified,
            "signatures_checked": signatures,
            "last_checkpoint": report.last_checkpoint,
            "last_verified_checkpoint": report.last_verified,
            "unsigned_tail": report.unsigned_tail,
        },
    }


class _Model(BaseModel):
    # strict: 1.0 or "1" is not a count, true is not a seq; extra members are allowed
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class FileEntry(_Model):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int


class Anchor(_Model):
    seq: int | None
    hash: str


class ChainEntry(_Model):
    instance: str
    anchor: Anchor
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    exported: int
    extended_to_checkpoint: int | None


class QueryEntry(_Model):
    filters: dict[str, list[str]] = Field(default_factory=dict)


class Manifest(_Model):
    """What ``check`` reads of a ``MANIFEST.json`` (``export`` writes more)."""

    query: QueryEntry
    files: list[FileEntry]
    chains: list[ChainEntry]


@dataclass
class ManifestCheck:
    problems: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    chains_verified: int = 0
    signatures_checked: bool = False
    unsigned: list[dict[str, Any]] = field(default_factory=list)  # chains not fully signed

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def result(self) -> Result:
        """BROKEN on any problem; with keys, UNSIGNED when a verified checkpoint does not
        cover every exported record of a chain segment."""
        if self.problems:
            return Result.BROKEN
        return Result.UNSIGNED if self.unsigned else Result.INTACT

    def add(self, code: str, detail: str, **where: Any) -> None:
        self.problems.append({"code": code, "detail": detail, **where})


def read_manifest(path: Path) -> Manifest | str:
    """The manifest at ``path``, or why it cannot be used (shape checked before any use)."""
    try:
        return Manifest.model_validate(loads_strict(path.read_bytes()))
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        if isinstance(exc, ValidationError):
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            return f"{path}: {where}: {error['msg']}"
        return f"{path} is not a JSON manifest"


def check(manifest_path: Path, *, keys: frozenset[str] | None = None,
          signature_check: cp.SignatureCheck | None = None) -> ManifestCheck:
    """Re-verify the export next to ``manifest_path`` (see the module docstring)."""
    result = ManifestCheck(signatures_checked=keys is not None and signature_check is not None)
    manifest = read_manifest(manifest_path)
    if isinstance(manifest, str):
        result.add("manifest_unreadable", manifest)
        return result
    folder = manifest_path.parent
    for entry in manifest.files:
        path = folder / Path(entry.name).name  # never outside the export folder
        if not path.is_file():
            result.add("file_missing", f"{path.name} is listed but missing", file=path.name)
        elif sha256_file(path) != entry.sha256:
            result.add("file_hash_mismatch", f"{path.name} differs from its SHA-256",
                       file=path.name)
        if path.is_file():
            _check_rows(result, path, entry, manifest, keys, signature_check)
    return result


def _check_rows(result: ManifestCheck, path: Path, entry: FileEntry, manifest: Manifest,
                keys: frozenset[str] | None,
                signature_check: cp.SignatureCheck | None) -> None:
    lines = path.read_bytes().splitlines()
    rows = len(lines) - (1 if path.suffix == ".csv" else 0)
    result.rows += max(rows, 0)
    if rows != entry.rows:
        result.add("row_count_mismatch", f"{path.name} has {rows} rows, manifest says "
                   f"{entry.rows}", file=path.name)
    if path.suffix != ".jsonl":
        return
    by_chain: defaultdict[str, list[bytes]] = defaultdict(list)
    for number, raw in enumerate(lines, start=1):
        record, canonical = stored_record(raw)  # exactly the bytes the chain hashed
        if record is None or not canonical or record.get("record_hash") != record_hash(record):
            result.add("record_altered", "not the canonical bytes of a record whose content "
                       "matches its record_hash", file=path.name, line=number)
        instance = record.get("instance") if record is not None else None
        by_chain[instance if isinstance(instance, str) else ""].append(raw)
    contiguous = not manifest.query.filters
    for chain in manifest.chains:
        _check_chain(result, chain, by_chain.get(chain.instance, []), contiguous,
                     keys, signature_check)


def _check_chain(result: ManifestCheck, chain: ChainEntry, lines: list[bytes],
                 contiguous: bool, keys: frozenset[str] | None,
                 signature_check: cp.SignatureCheck | None) -> None:
    name = chain.instance
    if len(lines) != chain.exported:
        result.add("chain_count_mismatch", f"{name}: {len(lines)} records, manifest says "
                   f"{chain.exported}", chain=name)
    if not contiguous or not lines or chain.anchor.seq is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        segment = Path(tmp) / "segment.jsonl"
        segment.write_bytes(b"".join(line + b"\n" for line in lines))
        anchor = ChainHead(chain.anchor.seq, chain.anchor.hash)
        report = verify([segment], keys=keys, check=signature_check, anchor=anchor)
    first = report.first_break
    last_point = report.last_checkpoint
    ends_signed = last_point is not None and last_point["seq_last"] + 1 == report.head.seq
    if first is not None:
        result.add("chain_broken", f"{name}: {first.kind.value} at seq {first.at.seq}",
                   chain=name, kind=first.kind.value, seq=first.at.seq)
    elif (report.first_seq, report.head.seq, report.head.hash) != (
            chain.first_seq, chain.last_seq, chain.last_hash):
        result.add("chain_range_mismatch", f"{name}: seq {report.first_seq}..{report.head.seq}"
                   f" differs from the manifest", chain=name)
    elif chain.extended_to_checkpoint is not None and not (
            ends_signed and chain.extended_to_checkpoint == report.head.seq):
        result.add("chain_range_mismatch", f"{name}: the manifest says the export runs on to "
                   f"the checkpoint at seq {chain.extended_to_checkpoint}, but it does not "
                   "end with it", chain=name)
    else:
        result.chains_verified += 1
        if report.unsigned:
            # The anchor and every exported record are proven only through a checkpoint
            # signed after them: without one, whoever wrote the files could have made them.
            result.unsigned.append({"chain": name, "records": report.unsigned,
                                    "after_checkpoint": report.last_verified})
