"""``authsvc nats-config``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER

DESCRIPTION = """\
The nats-server config that matches authsvc's settings, keys and policy: the auth callout,
the callout and target accounts, and authsvc's own login. Written to -o FILE, or printed."""

EPILOG = """\
examples:
  authsvc nats-config -c authsvc.yaml -o nats-server.conf && nats-server -c nats-server.conf
  authsvc nats-config -c authsvc.yaml -o nats-server.conf \\
      --tls-cert server.pem --tls-key server-key.pem --tls-ca ca.pem --tls-verify
      # TLS (and client certificates) on the client port; authsvc connects with tls://
      # and nats.tls_ca / nats.tls_cert / nats.tls_key (docs/deployment.md, "TLS")

Without -o the config goes to stdout; with -o it is written to that file and a one-line
summary (mode, accounts) is printed instead.

Target accounts are the accounts the policy grants. In config mode they are written into
the server config and need no keys. In operator mode (nats.mode: operator) the operator and
account JWTs are generated and preloaded (memory resolver) with a default sentinel: that
needs the operator key and each granted account's keys in keys.dir, made beforehand with
  authsvc keys init --dir KEYS --mode operator --accounts APP,OPS
(rerun it with a new account before granting it, then rerun nats-config).

Warnings go to stderr and do not change the exit status: audit.sink jetstream or both with
no --jetstream-dir (and no audit.jetstream.url), and a WebSocket or monitoring listener on
a nats.url host that is not loopback.

Exit status: 0 the config was written (-o) or printed; 2 settings that do not load, key
files that are missing or unreadable, a policy with an error or a grant into an account
serve refuses (the callout or system account; in operator mode, one without keys), --tls-*
options that would lock authsvc out (its settings ask for TLS and the server would not
offer it, or the reverse; --tls-verify without --tls-ca or without nats.tls_cert), or an -o
that cannot be written. Nothing is written when the status is 2."""


def register(sub: Any) -> None:
    parser = sub.add_parser("nats-config", help="write (-o) or print the matching "
                            "nats-server config", description=DESCRIPTION,
                            epilog=EPILOG, formatter_class=FORMATTER)
    parser.add_argument("-c", "--config", type=Path, required=True, help="settings YAML file")
    parser.add_argument("-o", "--out", type=Path, help="write here instead of stdout")
    parser.add_argument("--websocket-port", type=int,
                        help="add a WebSocket listener on nats.url's host, without TLS "
                             "(tokens in plaintext: keep that host loopback and put a TLS "
                             "proxy in front; warns otherwise)")
    parser.add_argument("--monitor-port", type=int,
                        help="add nats-server's HTTP monitoring listener on nats.url's host "
                             "(no TLS, no login: connection and account details for whoever "
                             "reaches it; warns when that host is not loopback)")
    parser.add_argument("--tls-cert", metavar="FILE",
                        help="TLS on the client port: the server's certificate (PEM); with "
                             "--tls-key")
    parser.add_argument("--tls-key", metavar="FILE", help="the server certificate's key (PEM)")
    parser.add_argument("--tls-ca", metavar="FILE",
                        help="CA (PEM) that client certificates must chain to")
    parser.add_argument("--tls-verify", action="store_true",
                        help="require a client certificate from every client (authsvc's "
                             "own: nats.tls_cert and nats.tls_key); needs --tls-ca")
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
    from authsvc.natsconf.render import Listener, ServerExtras
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
                          jetstream_dir=args.jetstream_dir, tls=_server_tls(args, settings))
    text = generate(settings, accounts, extras=extras, now=SystemClock().now())
    if settings.audit.sink != "file" and not settings.audit.jetstream.url \
            and not args.jetstream_dir:
        # The audit stream lives on this server (audit.jetstream.url is empty), which would
        # start without JetStream: every allow would wait on the spool until it fills.
        print(f"authsvc: warning: audit.sink is {settings.audit.sink!r} but this config "
              "enables no JetStream; pass --jetstream-dir DIR, or set audit.jetstream.url "
              "to a JetStream-enabled server", file=sys.stderr)
    listener = Listener.from_url(settings.nats.url)
    if args.websocket_port is not None and not listener.loopback:
        print(f"authsvc: warning: the WebSocket listener has no TLS and listens on "
              f"{listener.host} (nats.url's host), which is not loopback: client tokens "
              "would cross the network in plaintext; generate with a loopback nats.url host "
              "and put a TLS proxy in front", file=sys.stderr)
    if args.monitor_port is not None and not listener.loopback:
        print(f"authsvc: warning: the monitoring listener has no TLS and no login and listens "
              f"on {listener.host} (nats.url's host), which is not loopback: it shows "
              "connections, client addresses and accounts to whoever reaches it; keep its "
              "port on a private network", file=sys.stderr)
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as exc:  # e.g. a missing folder: say which path, not a traceback
            raise ConfigError(f"cannot write {args.out} (-o): {exc.strerror}") from None
        print(f"wrote {args.out} ({settings.nats.mode} mode, accounts: {', '.join(accounts)})")
    else:
        sys.stdout.write(text)
    return 0


def _server_tls(args: argparse.Namespace, settings: Any) -> Any:
    """The --tls-* options as a ServerTls, or None; refuses combinations that cannot work."""
    from authsvc.errors import ConfigError
    from authsvc.natsconf.render import ServerTls

    if not (args.tls_cert or args.tls_key or args.tls_ca or args.tls_verify):
        if settings.nats.tls:  # serve refuses to log in to a server that does not require TLS
            raise ConfigError("authsvc's settings ask for TLS (a tls:// nats.url or nats.tls_*) "
                              "but no --tls-cert/--tls-key were given: the server would not "
                              "offer TLS and authsvc would refuse to connect")
        return None
    if not (args.tls_cert and args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together (the server's certificate)")
    if args.tls_verify and not args.tls_ca:
        raise ConfigError("--tls-verify needs --tls-ca: the CA client certificates chain to")
    if args.tls_verify and settings.nats.tls_cert is None:
        raise ConfigError("--tls-verify requires a certificate from every client, authsvc "
                          "included: set nats.tls_cert and nats.tls_key in its settings")
    if not settings.nats.tls:
        raise ConfigError("the server would require TLS but authsvc's nats.url is not "
                          "tls:// and no nats.tls_* is set: it could not connect")
    paths = [str(Path(p).resolve()) if p else None
             for p in (args.tls_cert, args.tls_key, args.tls_ca)]
    return ServerTls(cert_file=paths[0] or "", key_file=paths[1] or "", ca_file=paths[2],
                     verify=args.tls_verify)
