"""``authsvc demo``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER, setup_logging

DESCRIPTION = """\
Runs a local nats-server and authsvc with policies/demo.yaml, then example clients that
authenticate with nkeys, OIDC tokens and an AWS IAM role: some are admitted with their
grant, some refused at connect or when they publish outside it. Ends with the decisions
from the audit log and the commands that verify it."""

EPILOG = """\
examples:
  authsvc demo                                   # files in run/demo/
  authsvc demo --mode operator --workdir /tmp/authsvc-demo

The workdir is cleared at the start of every run. The demo only ever clears a directory it
created, which it marks with a .authsvc-demo file, or an empty one; any other existing
directory is refused (exit 2) and left untouched.
Exit status: 0 every client got exactly what the policy says; 1 one did not; 2 the demo
could not start (a refused workdir, a missing nats-server)."""


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run a self-contained demo (server, service, clients)",
                            description=DESCRIPTION, epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("--mode", choices=["config", "operator"], default="config",
                        help="nats-server auth callout mode: accounts in the server config, "
                             "or operator JWTs (default: config)")
    parser.add_argument("--no-xkey", action="store_true", help="run without request encryption")
    parser.add_argument("--workdir", type=Path, default=Path("run/demo"),
                        help="where keys, configs and the audit log go; cleared at each run, "
                             "refused if it holds files the demo did not create "
                             "(default: run/demo)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from authsvc.demo.run import run_demo

    setup_logging(args.log_level or "WARNING")
    return asyncio.run(run_demo(workdir=args.workdir, mode=args.mode, xkey=not args.no_xkey))
