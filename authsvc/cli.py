"""The ``authsvc`` command: thin wrappers over the same functions the service uses."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from authsvc import __version__
from authsvc.commands import GROUPS
from authsvc.commands.common import FORMATTER
from authsvc.errors import AuthsvcError

DESCRIPTION = """\
authsvc is a NATS auth callout service. nats-server hands every connecting client to it on
$SYS.REQ.USER.AUTH; authsvc verifies who the client is, decides from a YAML policy which
account and subjects it gets, mints a short-lived user JWT and records the decision in an
append-only audit log.

Start here:
  authsvc demo                              run nats-server + authsvc + example clients
  authsvc keys init --dir keys              create the service's keys (once)
  authsvc policy check -c authsvc.yaml      validate and lint the policy serve would load
  authsvc nats-config -c authsvc.yaml -o nats-server.conf
                                            nats-server config matching authsvc's settings
  authsvc serve -c authsvc.yaml             run the callout service
  authsvc health -c authsvc.yaml            ask the running serve whether it is ready
  authsvc audit verify audit.jsonl --key U...
                                            check the audit log and its signatures

Settings come from a YAML file (-c), overridden by AUTHSVC_* environment variables
(AUTHSVC_NATS__URL=nats://..., AUTHSVC_AUDIT__PATH=...). See docs/configuration.md.
Run `authsvc COMMAND --help` for each command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authsvc", description=DESCRIPTION,
                                     formatter_class=FORMATTER)
    parser.add_argument("--version", action="version", version=f"authsvc {__version__}")
    parser.add_argument("--log-level", default=None,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity of serve and demo (default: the settings' "
                             "log_level for serve, WARNING for demo)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


# What a shell reports for a process that SIGPIPE ended (128 + 13): the reader went away.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
    except AuthsvcError as exc:
        print(f"authsvc: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `authsvc policy explain ... | head`: the reader has all it wanted. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again (Python docs,
        # "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
