"""``authsvc audit verify``: check an audit log end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from authsvc.commands import audit_export, audit_report, audit_stream
from authsvc.commands.audit_keys import NOT_CHECKED, add_key_options, trusted_keys, unsigned_note
from authsvc.commands.common import FORMATTER

EPILOG = """\
examples:
  authsvc audit verify /var/lib/authsvc/ --key UB3...      # a directory: every file in it
  authsvc audit verify audit.jsonl.2026* audit.jsonl --key-file audit.pub
  authsvc audit verify /var/lib/authsvc/ --keys-dir /etc/authsvc/keys --json

Exit status: 0 the chain holds; 1 a break (tampering, or records missing: the first break
is printed with file, line and seq); 3 the chain holds but the last file ends in a torn
record (what a crash mid-write leaves; compare with the last checkpoint you anchored); 2 an
input error (a malformed --key, a missing file): nothing was verified.
Without a key, checkpoint signatures are not checked, and the summary says so: the chain
alone shows the log is consistent, only the signatures show the service's audit key wrote
it. The key is the audit public key `authsvc keys init` prints ('audit checkpoints').
Key changes recorded in the chain (key.changed) are listed; after the checkpoint key
changed, give the old and the new key (--key is repeatable)."""

EXIT_OK, EXIT_BROKEN, EXIT_TORN = 0, 1, 3

AUDIT_DESCRIPTION = """\
The append-only audit log: every decision, policy activation, key change and signed
checkpoint, hash-chained. Check it (verify), take a period out as evidence (export), make
an auditor's HTML report (report), and, with JetStream, create or check the stream
(stream-init) and copy it to files (fetch)."""

AUDIT_EPILOG = """\
example:
  authsvc audit verify /var/lib/authsvc/ --key UB3...

Run `authsvc audit ACTION --help` for each action's options and examples."""


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify, export and report on the audit log; set up "
                           "and fetch its JetStream stream", description=AUDIT_DESCRIPTION,
                           epilog=AUDIT_EPILOG, formatter_class=FORMATTER)
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check chain, sequence and checkpoints",
                                epilog=EPILOG, formatter_class=FORMATTER)
    verify.add_argument("paths", nargs="*", type=Path, metavar="FILE|DIR",
                        help="audit files, or directories of them (one chain)")
    add_key_options(verify)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)
    audit_stream.register(actions)
    audit_export.register(actions, verify)
    audit_report.register(actions)


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
    signed = s["signatures_checked"]
    lines = [f"result: {s['result'].upper()}" + ("" if signed else f" ({NOT_CHECKED})"),
             f"files: {len(s['files'])}  records: {s['records']}  seq {s['first_seq']}.."
             f"{s['last_seq']}  decisions: {_counts(s['decisions'])}"]
    cp = s["last_checkpoint"]
    sig = (f"{s['checkpoints_verified']} signature(s) verified" if signed
           else f"{s['checkpoints']} signature(s) NOT checked: no key given")
    lines.append(f"checkpoints: {s['checkpoints']} ({sig})"
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
    if not signed:
        lines.append(unsigned_note())
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
