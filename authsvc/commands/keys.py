"""``authsvc keys init`` and ``authsvc keys user``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from authsvc.commands.common import FORMATTER

DESCRIPTION = """\
The service's nkey seeds, one file each in a key directory: the callout issuer, the service
user, the xkey for request encryption, the audit checkpoint key and, in operator mode, the
operator, account and account signing keys. Give the public keys to nats-server
(nats-config does) and to whoever verifies the audit log; never the seeds."""

EPILOG = """\
examples:
  authsvc keys init --dir keys                          # config mode
  authsvc keys init --dir keys --mode operator --accounts APP,OPS
  authsvc keys user --out orders-service.nk             # a client's nkey (see keys user -h)

Creates only missing files (seeds mode 0600; operator-mode accounts/*.pub, public
keys, 0644), never overwrites, and prints public keys only."""


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create the service's key files",
                          description=DESCRIPTION, epilog=EPILOG, formatter_class=FORMATTER)
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create missing key files",
                              description=DESCRIPTION, epilog=EPILOG, formatter_class=FORMATTER)
    init.add_argument("--dir", type=Path, required=True, help="key directory")
    init.add_argument("--mode", choices=["config", "operator"], default="config",
                      help="nats.mode the keys are for: config (accounts in the server "
                           "config) or operator (adds operator and account keys) "
                           "(default: config)")
    init.add_argument("--accounts", default="",
                      help="operator mode: comma-separated target accounts (e.g. APP,OPS)")
    init.set_defaults(handler=run_init)
    user = actions.add_parser(
        "user", help="create a client's user nkey seed file",
        description="A user nkey for a client or service that authenticates with nkey "
                    "proof of possession. The seed stays with the client; the policy names "
                    "the public key printed here.",
        epilog=USER_EPILOG, formatter_class=FORMATTER)
    user.add_argument("--out", type=Path, required=True,
                      help="seed file to create (mode 0600); an existing file is refused")
    user.set_defaults(handler=run_user)


USER_EPILOG = """\
example:
  authsvc keys user --out orders-service.nk
  # prints the public key (U...) for the policy:
  #   match: {source: nkey, subject: U...}
  # the client connects with the seed, e.g. nats-py:
  #   nats.connect(url, nkeys_seed_str=open("orders-service.nk").read())

Prints only the public key; the seed is written to --out and nowhere else. Generate it
where the client runs, or move it there over a secure channel. Exit status 2 if --out
exists or cannot be written."""


def run_user(args: argparse.Namespace) -> int:
    from authsvc.errors import ConfigError
    from authsvc.natsconf.keystore import write_secret
    from authsvc.protocol.nkeys import KeyPair, Prefix, create_seed

    seed = create_seed(Prefix.USER)
    try:
        write_secret(args.out, seed)
    except FileExistsError:
        raise ConfigError(f"{args.out} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {args.out}: {exc.strerror}") from None
    print(KeyPair.from_seed(seed).public_key)
    return 0


def run_init(args: argparse.Namespace) -> int:
    from authsvc.natsconf.keystore import SYSTEM_ACCOUNT, KeyStore

    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    operator = args.mode == "operator"
    if operator and SYSTEM_ACCOUNT not in accounts:
        accounts.append(SYSTEM_ACCOUNT)
    store = KeyStore(args.dir)
    for path in store.ensure(operator_mode=operator, accounts=accounts):
        print(f"created {path}")
    print(f"issuer (callout account) {store.issuer().public_key}")
    print(f"service user             {store.service().public_key}")
    print(f"xkey                     {store.xkey().public_key}")
    print(f"audit checkpoints        {store.audit_signer().public_key}  "
          "(give this to whoever verifies the audit log)")
    return 0
