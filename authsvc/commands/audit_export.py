"""``authsvc audit export`` and ``authsvc audit verify --manifest``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

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
roles: issuer, service, xkey, audit, account_signing.NAME), superseded (true or false: an
allow whose record did not become durable and that an error record takes back, so was not
granted); repeat a key for OR. The grants population:
  --filter type=decision --filter decision=allow --filter superseded=false --format csv
A period without records is valid evidence: the export is written with 0 rows and the
manifest still records each source chain's verification. --out must be new or empty: an
export never overwrites earlier evidence (--force replaces an earlier export's files).
Exit status: 0 written (also when a source ends in a torn record: "source torn"); 1
written, but a source chain does not verify (see MANIFEST.json); 4 written, but with --key
a source holds records no verified checkpoint covers (UNSIGNED, as verify); 2 an input
error (dates, filters, a malformed --key, a non-empty --out): nothing written. An export
that fails part way removes what it wrote."""

PROGRESS_MIN_BYTES = 1 << 20


def register(actions: Any, verify: Any) -> None:
    parser = actions.add_parser("export", help="a period's records plus a verifiable manifest",
                                epilog=EPILOG, formatter_class=FORMATTER)
    add_period_arguments(parser)
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl",
                        help="jsonl: the records as stored, re-verifiable; csv: a flat view "
                             "for spreadsheets (default: jsonl)")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="keep only matching records; repeatable (see below)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="new or empty directory for records.* and MANIFEST.json")
    parser.add_argument("--force", action="store_true",
                        help="replace the export files (MANIFEST.json, records.*) in a "
                             "non-empty --out; without it a non-empty --out is refused")
    add_key_options(parser)
    add_anchor_option(parser)
    parser.set_defaults(handler=run_export)
    verify.add_argument("--manifest", type=Path, metavar="MANIFEST.json",
                        help="re-verify an export from its manifest (instead of FILE|DIR)")


def add_period_arguments(parser: Any) -> None:
    """The audit chains to read and the period (``--from``/``--to``), for export and report."""
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR",
                        help="a chain (audit directory or files) or a folder of chains")
    parser.add_argument("--from", dest="start", required=True, type=moment,
                        help="first moment, inclusive (RFC 3339, or YYYY-MM-DD: UTC midnight)")
    parser.add_argument("--to", dest="end", required=True, type=moment,
                        help="end of the period, exclusive (same forms as --from)")


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
                      check=nkeys.verify, progress=progress, replace=args.force,
                      anchor=anchor_of(args))
    progress.finish()
    for chain, sources in zip(manifest["chains"], manifest["sources"], strict=True):
        print(chain_line(chain, sources))
        if chain["malformed_fields"]:
            print("  records with members of the wrong type (read as absent): " + ", ".join(
                f"{name} {count}" for name, count in chain["malformed_fields"].items()))
    written = manifest["files"][0]
    print(f"wrote {args.out / written['name']} ({manifest['rows']} rows"
          + ("" if manifest["rows"] else ": no record of the period matches") + ") and "
          f"{args.out / 'MANIFEST.json'}")
    if keys is None:
        print(unsigned_note())
    results = {c["source_verification"]["result"] for c in manifest["chains"]}
    if "broken" in results:
        return 1
    # With --key: a source holds records no verified checkpoint covers (as verify exits 4).
    return 4 if "unsigned" in results else 0


def chain_line(chain: dict[str, Any], sources: list[str]) -> str:
    """One line per source chain: what was exported and how the source verified."""
    name = chain["instance"] or ", ".join(sources)
    source = chain["source_verification"]["result"]
    if chain["exported"]:
        return (f"{name}: {chain['exported']} record(s) exported, seq {chain['first_seq']}.."
                f"{chain['last_seq']}, source {source}")
    if chain["records_in_period"]:
        return (f"{name}: none of the {chain['records_in_period']} record(s) in the period "
                f"match the filters, source {source}")
    return f"{name}: no records in the period, source {source}"


def run_manifest(args: argparse.Namespace) -> int:
    """``verify --manifest``: exit 0 intact, 1 a problem (manifest_unreadable included), 4
    with a key, exported records no verified checkpoint covers, 2 no such manifest."""
    from authsvc.audit.manifest import check
    from authsvc.commands.audit import EXIT_FOR
    from authsvc.errors import ConfigError
    from authsvc.protocol import nkeys

    if not args.manifest.exists():
        raise ConfigError(f"no such file: {args.manifest}")
    keys = trusted_keys(args)
    result = check(args.manifest, keys=keys, signature_check=nkeys.verify)
    summary: dict[str, Any] = {"result": result.result.value, "rows": result.rows,
               "chains_verified": result.chains_verified, "signatures_checked": keys is not None,
               "problems": result.problems, "unsigned": result.unsigned}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"result: {summary['result'].upper()}"
              + ("" if keys is not None else f" ({NOT_CHECKED})")
              + f"  rows: {result.rows}  chains verified: {result.chains_verified}")
        for problem in result.problems:
            print(f"PROBLEM {problem['code']}: {problem['detail']}")
        for chain in result.unsigned:
            print(f"UNSIGNED {chain['chain']}: {chain['records']} exported record(s) follow "
                  "the last verified checkpoint: no signature covers them.\n  If the period "
                  "ran past the last checkpoint written, export again once the service has "
                  "written\n  its next one (audit.checkpoint_interval).")
        if keys is None:
            print(unsigned_note())
    return EXIT_FOR[result.result.value]
