"""``authsvc serve``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER, setup_logging

EPILOG = """\
example:
  authsvc serve -c /etc/authsvc/authsvc.yaml

Exits 2 with a message naming the field or file:line on bad settings, keys or policy, or
when nats-server refuses its login; 69 when nats-server did not answer within
nats.startup_timeout (a supervisor may retry). On SIGTERM
it stops taking requests, answers those in flight, then exits. On SIGHUP, and when a policy
file changes, it reloads the policy files; a policy that fails to load or its checks is
refused and the previous one keeps serving (docs/policy.md). Settings and keys are read only
at startup."""


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run the callout service", epilog=EPILOG,
                            formatter_class=FORMATTER)
    parser.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from authsvc.server import serve
    from authsvc.settings import load_settings

    settings = load_settings(args.config)
    setup_logging(args.log_level or settings.log_level)
    asyncio.run(serve(settings))
    return 0
