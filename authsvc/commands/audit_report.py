"""``authsvc audit report``: a self-contained HTML report of a period for an auditor."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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
example:
  authsvc audit report /var/lib/authsvc/ --from 2026-03-01 --to 2026-04-01 \\
      --key UC73... --out march.html

One HTML file, no scripts or external resources: totals, a chart of allows and denials
over time, denials by reason and by identity, grants per identity and account, the policy
revisions active, key changes, audit pipeline events and the integrity verification of
every chain.
Without a key the integrity verdict covers the hash chain only; the report and the command
say that checkpoint signatures were not checked.
Exit status (as `audit verify`): 0 written and every chain intact; 1 written, but a chain
does not verify (BROKEN); 4 written, but with --key a chain has records no verified
checkpoint covers (UNSIGNED); 3 written, every chain holds but one ends in a torn record
(TORN: a crash mid-write); 2 an input error (dates, a malformed --key, no audit files):
nothing written."""


def register(actions: Any) -> None:
    from authsvc.commands.audit_export import add_period_arguments

    parser = actions.add_parser("report", help="an HTML report of a period",
                                epilog=EPILOG, formatter_class=FORMATTER)
    add_period_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.html",
                        help="the HTML file to write")
    add_key_options(parser)
    add_anchor_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from authsvc import __version__
    from authsvc.audit.report import build
    from authsvc.audit.reporthtml import render
    from authsvc.clock import SystemClock
    from authsvc.commands.audit import EXIT_BROKEN, EXIT_OK, EXIT_TORN, EXIT_UNSIGNED
    from authsvc.errors import ConfigError
    from authsvc.protocol import nkeys

    if args.end <= args.start:
        raise ConfigError("--to must be after --from")
    keys = trusted_keys(args)
    report = build(args.paths, args.start, args.end, keys=keys, check=nkeys.verify,
                   anchor=anchor_of(args))
    if not report.integrity:
        raise ConfigError("no audit files found in " + ", ".join(map(str, args.paths)))
    html = render(report, generated=SystemClock().now(), tool_version=__version__)
    args.out.write_text(html, encoding="utf-8")
    total = sum(report.totals.values())
    print(f"wrote {args.out}: {total} decisions, integrity {report.verdict.upper()}"
          + ("" if keys is not None else f" ({NOT_CHECKED})"))
    if report.malformed:
        print("records with members of the wrong type (read as absent): " + ", ".join(
            f"{name} {count}" for name, count in sorted(report.malformed.items())))
    if keys is None:
        print(unsigned_note())
    return {"intact": EXIT_OK, "torn": EXIT_TORN,
            "unsigned": EXIT_UNSIGNED}.get(report.verdict, EXIT_BROKEN)
