"""The ``authsvc`` command: thin wrappers over the same functions the service uses."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from authsvc import __version__
from authsvc.errors import AuthsvcError

DESCRIPTION = """\
authsvc is a NATS auth callout service. nats-server hands every connecting client to it on
$SYS.REQ.USER.AUTH; authsvc verifies who the client is, decides from a YAML policy which
account and subjects it gets, mints a short-lived user JWT and records the decision in an
append-only audit log.

Start here:
  authsvc demo                              run nats-server + authsvc + example clients
  authsvc keys init --dir keys              create the service's keys (once)
  authsvc nats-config -c authsvc.yaml -o nats-server.conf
                                            nats-server config matching authsvc's settings
  authsvc serve -c authsvc.yaml             run the callout service

Settings come from a YAML file (-c), overridden by AUTHSVC_* environment variables
(AUTHSVC_NATS__URL=nats://..., AUTHSVC_AUDIT__PATH=...). See docs/configuration.md.
"""

SERVE_EPILOG = """\
example:
  authsvc serve -c /etc/authsvc/authsvc.yaml

Exits 2 with a message naming the field or file:line on bad settings or policy. On SIGTERM
it stops taking requests, answers those in flight, then exits."""

KEYS_EPILOG = """\
examples:
  authsvc keys init --dir keys                          # config mode
  authsvc keys init --dir keys --mode operator --accounts APP,OPS

Creates only missing files (mode 0600), never overwrites, and prints public keys only."""

NATS_CONFIG_EPILOG = """\
example:
  authsvc nats-config -c authsvc.yaml -o nats-server.conf && nats-server -c nats-server.conf

Target accounts are the accounts the policy grants. In operator mode the operator and
account JWTs are generated and preloaded (memory resolver) with a default sentinel."""


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="authsvc", description=DESCRIPTION, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"authsvc {__version__}")
    parser.add_argument("--log-level", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the callout service", epilog=SERVE_EPILOG,
                           formatter_class=fmt)
    serve.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")

    keys = sub.add_parser("keys", help="manage the service's key files")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = keys_sub.add_parser("init", help="create missing key files", epilog=KEYS_EPILOG,
                               formatter_class=fmt)
    init.add_argument("--dir", type=Path, required=True, help="key directory")
    init.add_argument("--mode", choices=["config", "operator"], default="config")
    init.add_argument("--accounts", default="",
                      help="operator mode: comma-separated target accounts (e.g. APP,OPS)")

    conf = sub.add_parser("nats-config", help="print the matching nats-server config",
                          epilog=NATS_CONFIG_EPILOG, formatter_class=fmt)
    conf.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    conf.add_argument("-o", "--out", type=Path, help="write here instead of stdout")
    conf.add_argument("--websocket-port", type=int, help="add a (plain, loopback) WS listener")
    conf.add_argument("--monitor-port", type=int, help="add the HTTP monitoring listener")
    conf.add_argument("--jetstream-dir", help="enable JetStream with this store dir")

    demo = sub.add_parser("demo", help="run a self-contained demo (server, service, clients)")
    demo.add_argument("--mode", choices=["config", "operator"], default="config")
    demo.add_argument("--no-xkey", action="store_true", help="run without request encryption")
    demo.add_argument("--workdir", type=Path, default=Path("run/demo"),
                      help="where keys, configs and the audit log go (default: run/demo)")
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    from authsvc.server import serve
    from authsvc.settings import load_settings

    settings = load_settings(args.config)
    _logging(args.log_level or settings.log_level)
    asyncio.run(serve(settings))
    return 0


def _cmd_keys_init(args: argparse.Namespace) -> int:
    from authsvc.natsconf.keystore import KeyStore
    from authsvc.natsconf.operator import SYSTEM_ACCOUNT

    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    operator = args.mode == "operator"
    if operator and SYSTEM_ACCOUNT not in accounts:
        accounts.append(SYSTEM_ACCOUNT)
    store = KeyStore(args.dir)
    created = store.ensure(operator_mode=operator, accounts=accounts)
    for path in created:
        print(f"created {path}")
    print(f"issuer (callout account) {store.issuer().public_key}")
    print(f"service user             {store.service().public_key}")
    print(f"xkey                     {store.xkey().public_key}")
    return 0


def _cmd_nats_config(args: argparse.Namespace) -> int:
    from authsvc.clock import SystemClock
    from authsvc.natsconf.generate import generate
    from authsvc.natsconf.render import ServerExtras
    from authsvc.policy import load_policy
    from authsvc.server import policy_accounts
    from authsvc.settings import load_settings

    settings = load_settings(args.config)
    accounts = policy_accounts(load_policy(settings.policy.paths))
    extras = ServerExtras(websocket_port=args.websocket_port, monitor_port=args.monitor_port,
                          jetstream_dir=args.jetstream_dir)
    text = generate(settings, accounts, extras=extras, now=SystemClock().now())
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out} ({settings.nats.mode} mode, accounts: {', '.join(accounts)})")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from authsvc.demo.run import run_demo

    _logging(args.log_level or "WARNING")
    return asyncio.run(run_demo(workdir=args.workdir, mode=args.mode, xkey=not args.no_xkey))


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"serve": _cmd_serve, "nats-config": _cmd_nats_config, "demo": _cmd_demo,
                "keys": _cmd_keys_init}
    try:
        return handlers[args.command](args)
    except AuthsvcError as exc:
        print(f"authsvc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
