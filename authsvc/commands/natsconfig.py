"""``authsvc nats-config``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER

EPILOG = """\
example:
  authsvc nats-config -c authsvc.yaml -o nats-server.conf && nats-server -c nats-server.conf

Target accounts are the accounts the policy grants. In operator mode the operator and
account JWTs are generated and preloaded (memory resolver) with a default sentinel."""


def register(sub: Any) -> None:
    parser = sub.add_parser("nats-config", help="print the matching nats-server config",
                            epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    parser.add_argument("-o", "--out", type=Path, help="write here instead of stdout")
    parser.add_argument("--websocket-port", type=int,
                        help="add a (plain, loopback) WebSocket listener")
    parser.add_argument("--monitor-port", type=int, help="add the HTTP monitoring listener")
    parser.add_argument("--jetstream-dir",
                        help="enable JetStream with this store dir (needed for audit.sink "
                             "jetstream or both unless audit.jetstream.url names another "
                             "server)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from authsvc.clock import SystemClock
    from authsvc.commands.policy_inputs import account_problems
    from authsvc.errors import ConfigError
    from authsvc.natsconf.generate import generate
    from authsvc.natsconf.render import ServerExtras
    from authsvc.policy import load_policy
    from authsvc.server import policy_accounts
    from authsvc.settings import load_settings

    settings = load_settings(args.config)
    policy = load_policy(settings.policy.paths)
    refused, _note = account_problems(policy, settings)
    if refused:  # the same refusals as serve and `policy check -c`, with file:line
        raise ConfigError("the policy grants accounts serve refuses:\n"
                          + "\n".join(problem.render() for problem in refused))
    accounts = policy_accounts(policy)
    extras = ServerExtras(websocket_port=args.websocket_port, monitor_port=args.monitor_port,
                          jetstream_dir=args.jetstream_dir)
    text = generate(settings, accounts, extras=extras, now=SystemClock().now())
    if settings.audit.sink != "file" and not settings.audit.jetstream.url \
            and not args.jetstream_dir:
        # The audit stream lives on this server (audit.jetstream.url is empty), which would
        # start without JetStream: every allow would wait on the spool until it fills.
        print(f"authsvc: warning: audit.sink is {settings.audit.sink!r} but this config "
              "enables no JetStream; pass --jetstream-dir DIR, or set audit.jetstream.url "
              "to a JetStream-enabled server", file=sys.stderr)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out} ({settings.nats.mode} mode, accounts: {', '.join(accounts)})")
    else:
        sys.stdout.write(text)
    return 0
