"""``authsvc audit verify``: check an audit log end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from authsvc.commands import audit_export, audit_report, audit_stream
from authsvc.commands.common import FORMATTER

EPILOG = """\
examples:
  authsvc audit verify /var/lib/authsvc/ --key UB3...      # a directory: every file in it
  authsvc audit verify audit.jsonl.2026* audit.jsonl --key-file audit.pub
  authsvc audit verify /var/lib/authsvc/ --keys-dir /etc/authsvc/keys --json

Exit status: 0 the chain holds; 1 a break (tampering, or records missing: the first break
is printed with file, line and seq); 3 the chain holds but the last file ends in a torn
record (what a crash mid-write leaves; compare with the last checkpoint you anchored).
Without a key, checkpoint signatures are not checked (and the summary says so). Key changes
recorded in the chain (key.changed) are listed; after the checkpoint key changed, give the
old and the new key (--key is repeatable)."""

EXIT_OK, EXIT_BROKEN, EXIT_TORN = 0, 1, 3


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify, fetch and export the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check chain, sequence and checkpoints",
                                epilog=EPILOG, formatter_class=FORMATTER)
    verify.add_argument("paths", nargs="*", type=Path, metavar="FILE|DIR")
    keys = verify.add_mutually_exclusive_group()
    keys.add_argument("--key", action="append", default=[],
                      help="trusted checkpoint public key (U...); repeatable")
    keys.add_argument("--key-file", type=Path, help="file holding the public key")
    keys.add_argument("--keys-dir", type=Path, help="key directory with audit.nk")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)
    audit_stream.register(actions)
    audit_export.register(actions, verify)
    audit_report.register(actions)


def trusted_keys(args: argparse.Namespace) -> frozenset[str] | None:
    """The public keys checkpoints must be signed with, or None if none were given."""
    from authsvc.natsconf.keystore import KeyStore

    if args.key:
        return frozenset(args.key)
    if args.key_file:
        return frozenset(args.key_file.read_text().split())
    if args.keys_dir:
        return frozenset({KeyStore(args.keys_dir).audit_signer().public_key})
    return None


def run_verify(args: argparse.Namespace) -> int:
    from authsvc.audit import verify
    from authsvc.errors import ConfigError
    from authsvc.protocol import nkeys

    if args.manifest is not None:
        return audit_export.run_manifest(args)
    if not args.paths:
        raise ConfigError("name the audit files or directories to verify, or --manifest")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    keys = trusted_keys(args)
    report = verify(args.paths, keys=keys, check=nkeys.verify)
    summary = summarise(report, signatures_checked=keys is not None)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    if not report.ok:
        return EXIT_BROKEN
    return EXIT_TORN if report.torn_final else EXIT_OK


def summarise(report: Any, *, signatures_checked: bool) -> dict[str, Any]:
    """The report as plain data (also what ``--json`` prints and exports embed)."""
    first = report.first_break
    return {
        "result": "broken" if not report.ok else ("torn" if report.torn_final else "intact"),
        "files": [{"name": n, "records": c} for n, c in report.files],
        "records": report.records, "legacy_unchained": report.legacy,
        "first_seq": report.first_seq, "last_seq": report.head.seq if report.records else None,
        "head": report.head.hash if report.records else None,
        "types": dict(report.types), "decisions": dict(report.decisions),
        "gaps": [{"from": a, "to": b} for a, b in report.gaps],
        "breaks": len(report.breaks),
        "first_break": None if first is None else {
            "kind": first.kind.value, "file": first.at.file, "line": first.at.line,
            "seq": first.at.seq, "detail": first.detail},
        "checkpoints": report.checkpoints, "checkpoints_verified": report.checkpoints_verified,
        "signatures_checked": signatures_checked,
        "last_checkpoint": report.last_checkpoint, "unsigned_tail": report.unsigned_tail,
        "torn": [{"file": f, "bytes": b} for f, b in report.torn],
        "key_changes": [{"seq": seq, "time": time, "changes": [c.as_dict() for c in changes]}
                        for seq, time, changes in report.key_changes],
    }


def render(s: dict[str, Any]) -> str:
    """A short human summary."""
    lines = [f"result: {s['result'].upper()}",
             f"files: {len(s['files'])}  records: {s['records']}  seq {s['first_seq']}.."
             f"{s['last_seq']}  decisions: {_counts(s['decisions'])}"]
    cp = s["last_checkpoint"]
    sig = "signatures verified" if s["signatures_checked"] else "signatures NOT checked (no key)"
    lines.append(f"checkpoints: {s['checkpoints']} ({s['checkpoints_verified']} {sig})"
                 + (f"; last covers seq {cp['seq_first']}..{cp['seq_last']} at {cp['time']}"
                    if cp else ""))
    if s["unsigned_tail"]:
        lines.append(f"note: {s['unsigned_tail']} record(s) after the last checkpoint are "
                     "protected by the chain only")
    for torn in s["torn"]:
        lines.append(f"torn record: {torn['file']} ends in {torn['bytes']} bytes of an "
                     "incomplete write (a crash), not counted")
    for event in s["key_changes"]:
        lines.append(f"key change at seq {event['seq']} ({event['time']}): " + ", ".join(
            f"{c['role']} {c['change']}" for c in event["changes"]))
    if any(c["role"] == "audit" for event in s["key_changes"] for c in event["changes"]):
        lines.append("note: the checkpoint key changed; checkpoints before and after the "
                     "change verify only when every key is given (--key OLD --key NEW)")
    for gap in s["gaps"]:
        lines.append(f"gap: seq {gap['from']}..{gap['to']} missing")
    if s["first_break"]:
        b = s["first_break"]
        lines.append(f"FIRST BREAK: {b['kind']} at {b['file']}:{b['line']} (seq {b['seq']}): "
                     f"{b['detail']}  [{s['breaks']} break(s) in all]")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
