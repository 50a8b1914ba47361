"""``authsvc audit export`` and ``authsvc audit verify --manifest``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from authsvc.commands.common import FORMATTER

EPILOG = """\
examples:
  authsvc audit export /var/lib/authsvc/ --from 2026-03-01 --to 2026-04-01 --out march/ \\
      --key UC73...
  authsvc audit export evidence/stream/ --from 2026-03-01 --to 2026-04-01 --format csv \\
      --filter type=decision --filter decision=deny --out march-denials/
  authsvc audit verify --manifest march/MANIFEST.json --key UC73...

--from is inclusive, --to exclusive (dates are UTC midnight). Each path is one chain (an
audit directory or files) or a folder of chains (what `audit fetch` writes). An unfiltered
JSON-lines export runs on to the first signed checkpoint after the period, so a signature
covers every record in it. Filters: KEY=VALUE with KEY one of type, decision, reason,
instance, account, principal, source, rule, client_host, key_role (a key.changed record's
roles: issuer, service, xkey, audit, account_signing.NAME); repeat a key for OR.
Exit status: 0 written; 1 written, but a source chain does not verify (see MANIFEST.json)."""

PROGRESS_MIN_BYTES = 1 << 20


def register(actions: Any, verify: Any) -> None:
    parser = actions.add_parser("export", help="a period's records plus a verifiable manifest",
                                epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    parser.add_argument("--from", dest="start", required=True, type=moment,
                        help="first moment (RFC 3339 or YYYY-MM-DD, UTC)")
    parser.add_argument("--to", dest="end", required=True, type=moment,
                        help="end of the period, exclusive")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", action="append", default=[], help="checkpoint public key")
    keys.add_argument("--key-file", type=Path)
    keys.add_argument("--keys-dir", type=Path)
    parser.set_defaults(handler=run_export)
    verify.add_argument("--manifest", type=Path, help="re-verify an export from its manifest")


def moment(text: str) -> datetime:
    """``2026-03-01`` (UTC midnight) or an RFC 3339 time; naive times are UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or RFC 3339 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Progress:
    """A bar on ``stream`` for large exports, only when it is a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.done, self._shown = stream, total, 0, -1
        self.active = total >= PROGRESS_MIN_BYTES and stream.isatty()

    def __call__(self, count: int) -> None:
        self.done += count
        percent = min(100, self.done * 100 // max(self.total, 1))
        if self.active and percent != self._shown:
            self._shown = percent
            bar = "#" * (percent // 4)
            self.stream.write(f"\rexporting [{bar:<25}] {percent:3d}% "
                              f"{self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB")
            self.stream.flush()

    def finish(self) -> None:
        if self.active:
            self.stream.write("\n")


def run_export(args: argparse.Namespace) -> int:
    from authsvc import __version__
    from authsvc.audit.export import Query, chain_sources, export, parse_filters
    from authsvc.commands.audit import trusted_keys
    from authsvc.errors import ConfigError
    from authsvc.protocol import nkeys

    if args.end <= args.start:
        raise ConfigError("--to must be after --from")
    query = Query(start=args.start, end=args.end, format=args.format,
                  filters=parse_filters(args.filter))
    keys = trusted_keys(args)
    total = sum(f.stat().st_size for files in chain_sources(args.paths) for f in files)
    progress = Progress(sys.stderr, total)
    manifest = export(args.paths, query, args.out, tool_version=__version__, keys=keys,
                      check=nkeys.verify, progress=progress)
    progress.finish()
    broken = [c["instance"] for c in manifest["chains"]
              if c["source_verification"]["result"] == "broken"]
    for chain in manifest["chains"]:
        print(f"{chain['instance']}: {chain['exported']} record(s) exported, seq "
              f"{chain['first_seq']}..{chain['last_seq']}, source "
              f"{chain['source_verification']['result']}")
    print(f"wrote {args.out}/{manifest['files'][0]['name']} ({manifest['rows']} rows) and "
          f"MANIFEST.json")
    return 1 if broken else 0


def run_manifest(args: argparse.Namespace) -> int:
    from authsvc.audit.manifest import check
    from authsvc.commands.audit import EXIT_BROKEN, EXIT_OK, trusted_keys
    from authsvc.protocol import nkeys

    keys = trusted_keys(args)
    result = check(args.manifest, keys=keys, signature_check=nkeys.verify)
    summary: dict[str, Any] = {"result": "intact" if result.ok else "broken", "rows": result.rows,
               "chains_verified": result.chains_verified, "signatures_checked": keys is not None,
               "problems": result.problems}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"result: {summary['result'].upper()}  rows: {result.rows}  chains verified: "
              f"{result.chains_verified}")
        for problem in result.problems:
            print(f"PROBLEM {problem['code']}: {problem['detail']}")
    return EXIT_OK if result.ok else EXIT_BROKEN
