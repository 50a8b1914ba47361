"""An export's ``MANIFEST.json``: what it claims, and re-checking an export against it.

``check`` recomputes every file's SHA-256 and row count, every JSON-lines record's
``record_hash``, and, for an unfiltered JSON-lines export, the whole chain segment from the
manifest's anchor (``seq`` and hash of the record before the first one) through its last
record, checkpoint signatures included when keys are given. Problems are reported as
stable codes (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import ChainHead, record_hash
from authsvc.audit.verify import Report, verify

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
            "result": "broken" if not report.ok else ("torn" if report.torn_final else "intact"),
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
        },
    }


@dataclass
class ManifestCheck:
    problems: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    chains_verified: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, detail: str, **where: Any) -> None:
        self.problems.append({"code": code, "detail": detail, **where})


def check(manifest_path: Path, *, keys: frozenset[str] | None = None,
          signature_check: cp.SignatureCheck | None = None) -> ManifestCheck:
    """Re-verify the export next to ``manifest_path`` (see the module docstring)."""
    result = ManifestCheck()
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        result.add("manifest_unreadable", f"{manifest_path} is not a readable JSON manifest")
        return result
    folder = manifest_path.parent
    for entry in manifest.get("files", []):
        path = folder / Path(str(entry["name"])).name  # never outside the export folder
        if not path.is_file():
            result.add("file_missing", f"{path.name} is listed but missing", file=path.name)
        elif sha256_file(path) != entry["sha256"]:
            result.add("file_hash_mismatch", f"{path.name} differs from its SHA-256",
                       file=path.name)
        if path.is_file():
            _check_rows(result, path, entry, manifest, keys, signature_check)
    return result


def _check_rows(result: ManifestCheck, path: Path, entry: dict[str, Any],
                manifest: dict[str, Any], keys: frozenset[str] | None,
                signature_check: cp.SignatureCheck | None) -> None:
    lines = path.read_bytes().splitlines()
    rows = len(lines) - (1 if path.suffix == ".csv" else 0)
    result.rows += max(rows, 0)
    if rows != entry.get("rows"):
        result.add("row_count_mismatch", f"{path.name} has {rows} rows, manifest says "
                   f"{entry.get('rows')}", file=path.name)
    if path.suffix != ".jsonl":
        return
    by_chain: defaultdict[str, list[bytes]] = defaultdict(list)
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
            altered = record.get("record_hash") != record_hash(record)
        except (ValueError, AttributeError):
            record, altered = {}, True
        if altered:
            result.add("record_altered", "content does not match record_hash",
                       file=path.name, line=number)
        by_chain[str(record.get("instance", ""))].append(raw)
    contiguous = not manifest.get("query", {}).get("filters")
    for chain in manifest.get("chains", []):
        _check_chain(result, chain, by_chain.get(chain["instance"], []), contiguous,
                     keys, signature_check)


def _check_chain(result: ManifestCheck, chain: dict[str, Any], lines: list[bytes],
                 contiguous: bool, keys: frozenset[str] | None,
                 signature_check: cp.SignatureCheck | None) -> None:
    name = chain["instance"]
    if len(lines) != chain["exported"]:
        result.add("chain_count_mismatch", f"{name}: {len(lines)} records, manifest says "
                   f"{chain['exported']}", chain=name)
    if not contiguous or not lines or chain["anchor"]["seq"] is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        segment = Path(tmp) / "segment.jsonl"
        segment.write_bytes(b"".join(line + b"\n" for line in lines))
        anchor = ChainHead(int(chain["anchor"]["seq"]), str(chain["anchor"]["hash"]))
        report = verify([segment], keys=keys, check=signature_check, anchor=anchor)
    first = report.first_break
    if first is not None:
        result.add("chain_broken", f"{name}: {first.kind.value} at seq {first.at.seq}",
                   chain=name, kind=first.kind.value, seq=first.at.seq)
    elif (report.first_seq, report.head.seq, report.head.hash) != (
            chain["first_seq"], chain["last_seq"], chain["last_hash"]):
        result.add("chain_range_mismatch", f"{name}: seq {report.first_seq}..{report.head.seq}"
                   f" differs from the manifest", chain=name)
    else:
        result.chains_verified += 1
