"""``authsvc audit verify``: check an audit log end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from authsvc.commands import audit_export, audit_report, audit_stream
from authsvc.commands.audit_keys import (
    NOT_CHECKED,
    add_anchor_option,
    add_key_options,
    anchor_of,
    trusted_keys,
    unsigned_note,
)
from authsvc.commands.common import FORMATTER

EPILOG = """\
examples:
  authsvc audit verify /var/lib/authsvc/ --key UB3...      # a directory: every file in it
  authsvc audit verify audit.jsonl.2026* audit.jsonl --key-file audit.pub
  authsvc audit verify /var/lib/authsvc/ --keys-dir /etc/authsvc/keys --json
  authsvc audit verify evidence/stream/ --key UB3...      # what `audit fetch` wrote: each chain
  authsvc audit verify /var/lib/authsvc/ --key UB3... --anchor 8123:5f0c...
      # older rotated files deleted: start after record 8123 (their closing checkpoint)

The files and directories given are one chain. A folder of chain folders (what
`audit fetch --out` writes) is verified chain by chain; the exit status is the worst.
Exit status: 0 the chain holds (with a key: every record is covered by a checkpoint whose
signature verified); 1 a break (tampering, or records missing: the first break is printed
with file, line and seq); 4 with a key, records that no verified checkpoint covers yet (the
unsigned tail of a live log: the service signs it at its next checkpoint, every
audit.checkpoint_interval seconds, at rotation and at stop; verify again after it); 3 the
chain holds but the last file ends in a torn record (what a crash mid-write leaves; compare
with the last checkpoint you anchored; 4 wins over 3); 2 an input error (a malformed --key,
a missing file, no audit files found): nothing was verified. With --manifest: 0 intact,
1 a problem (e.g. manifest_unreadable), 4 with a key, exported records that no verified
checkpoint covers, 2 no such manifest.
Without a key, checkpoint signatures are not checked, and the summary says so: the chain
alone shows the log is consistent, only the signatures show the service's audit key wrote
it. The key is the audit public key `authsvc keys init` prints ('audit checkpoints').
Key changes recorded in the chain (key.changed) are listed; after the checkpoint key
changed, give the old and the new key (--key is repeatable)."""

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_TORN, EXIT_UNSIGNED = 0, 1, 2, 3, 4
EXIT_FOR = {"intact": EXIT_OK, "broken": EXIT_BROKEN, "torn": EXIT_TORN,
            "unsigned": EXIT_UNSIGNED}
SEVERITY = ("intact", "torn", "unsigned", "broken")  # the worst of several chains wins

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
    add_anchor_option(verify)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)
    audit_stream.register(actions)
    audit_export.register(actions, verify)
    audit_report.register(actions)


def run_verify(args: argparse.Namespace) -> int:
    from authsvc.audit import verify
    from authsvc.audit.export import anchored_chains
    from authsvc.errors import ConfigError
    from authsvc.protocol import nkeys

    if args.manifest is not None:
        return audit_export.run_manifest(args)
    if not args.paths:
        raise ConfigError("name the audit files or directories to verify, or --manifest")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    chains = find_chains(args.paths)
    keys = trusted_keys(args)
    anchor = anchor_of(args)
    anchored_chains(chains, anchor)
    summaries = []
    for label, files in chains:
        report = verify(files, keys=keys, check=nkeys.verify, anchor=anchor)
        if report.empty:
            raise ConfigError(f"no audit records found in {label}: its files are empty")
        summaries.append({**({"path": label} if len(chains) > 1 else {}),
                          **summarise(report, signatures_checked=keys is not None)})
    worst = max((s["result"] for s in summaries), key=SEVERITY.index)
    if args.json:
        body = summaries[0] if len(chains) == 1 else {"result": worst, "chains": summaries}
        print(json.dumps(body, indent=2))
    elif len(chains) == 1:
        print(render(summaries[0]))
    else:
        for summary in summaries:
            print(f"chain {summary['path']}:\n{render(summary)}\n")
        print(f"result of {len(chains)} chains: {worst.upper()}")
    return EXIT_FOR[worst]


def find_chains(paths: list[Path]) -> list[tuple[str, list[Path]]]:
    """(label, files) per chain: the paths given form one chain, unless they are folders of
    chain folders (what ``audit fetch --out`` writes), found as export and report find them.
    """
    from authsvc.audit.export import chain_sources, refuse_mixed
    from authsvc.audit.verify import expand
    from authsvc.errors import ConfigError

    one: list[Path] = []
    folders: list[Path] = []
    for path in paths:
        files = expand([path])
        refuse_mixed(path, files)
        if files:
            one.extend(files)
        elif path.is_dir() and chain_sources([path]):
            folders.append(path)
        else:
            raise ConfigError(f"no audit files found in {path}")
    if one and folders:
        raise ConfigError(f"{folders[0]} holds a folder per chain (what `audit fetch --out` "
                          "writes): verify it on its own, or name its chain folders")
    if one:
        return [(", ".join(str(p) for p in paths), one)]
    return [(str(files[0].parent), files)
            for folder in folders for files in chain_sources([folder])]


def summarise(report: Any, *, signatures_checked: bool) -> dict[str, Any]:
    """The report as plain data (also what ``--json`` prints and exports embed)."""
    first = report.first_break
    return {
        "result": report.result.value,
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
        "last_checkpoint": report.last_checkpoint,
        "last_verified_checkpoint": report.last_verified,
        "unsigned_tail": report.unsigned_tail,
        "unsigned_from": report.head.seq - report.unsigned_tail + 1
        if report.unsigned_tail else None,
        "unsigned": report.unsigned,
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
    lines.extend(_unsigned_lines(s))
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


def _unsigned_lines(s: dict[str, Any]) -> list[str]:
    tail, legacy = s["unsigned_tail"], s["legacy_unchained"]
    if not s["signatures_checked"]:
        return [f"note: {tail} record(s) after the last checkpoint are protected by the "
                "chain only"] if tail else []
    lines = []
    if tail:
        lines.append(f"unsigned tail: {tail} record(s), seq {s['unsigned_from']}..{s['last_seq']}, "
                     "follow the last verified checkpoint: no\n      signature covers them "
                     "yet, so whoever can write the files could have written them. A\n"
                     "      running service signs them at its next checkpoint (every "
                     "audit.checkpoint_interval\n      seconds, at rotation and at stop): "
                     "verify again then. An export runs on to that checkpoint.")
    if legacy:
        lines.append(f"unsigned: {legacy} legacy record(s) (schema v1, before the chain "
                     "began) are covered by neither the chain nor a signature")
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
