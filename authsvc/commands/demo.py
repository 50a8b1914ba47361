"""``authsvc demo``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from authsvc.commands.common import setup_logging


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run a self-contained demo (server, service, clients)")
    parser.add_argument("--mode", choices=["config", "operator"], default="config")
    parser.add_argument("--no-xkey", action="store_true", help="run without request encryption")
    parser.add_argument("--workdir", type=Path, default=Path("run/demo"),
                        help="where keys, configs and the audit log go (default: run/demo)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from authsvc.demo.run import run_demo

    setup_logging(args.log_level or "WARNING")
    return asyncio.run(run_demo(workdir=args.workdir, mode=args.mode, xkey=not args.no_xkey))
