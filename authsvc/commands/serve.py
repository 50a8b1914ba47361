"""``authsvc serve``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER, setup_logging

SUMMARY = "run the callout service"
DESCRIPTION = "Run the callout service: answer nats-server's authorization requests."

EPILOG = """\
example:
  authsvc serve -c /etc/authsvc/authsvc.yaml

On SIGTERM or SIGINT it stops taking requests, answers those in flight (up to
service.shutdown_grace), drains its connection, records service.stop and a closing audit
checkpoint, and exits 0, also when nats-server cannot be reached at that moment. On SIGHUP,
and when a policy file changes, it reloads the policy files; a policy that fails to load or
its checks is refused and the previous one keeps serving (docs/policy.md). Settings and
keys are read only at startup.

Exit status: 0 stopped by SIGTERM or SIGINT; 2 bad settings, keys or policy (the message
names the field, or each policy problem's file:line:column), nats-server refused its login,
or another authsvc holds audit.path; 69 nats-server did not answer within
nats.startup_timeout (a supervisor may retry)."""


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help=SUMMARY, description=DESCRIPTION, epilog=EPILOG,
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
