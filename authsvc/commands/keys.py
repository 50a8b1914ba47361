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

INIT_EPILOG = """\
examples:
  authsvc keys init --dir keys                          # config mode
  authsvc keys init --dir keys --mode operator --accounts APP,OPS
      # then: authsvc nats-config -c authsvc.yaml -o nats-server.conf

Files in --dir (names are fixed: settings and nats-config find them there):
  issuer.nk              the callout issuer (account key; in operator mode the callout
                         account's own key)
  service.nk             the service's user nkey, its login to nats-server
  xkey.xk                curve key that encrypts requests and responses (keys.xkey)
  audit.nk               signs audit checkpoints; its public key verifies the log
operator mode also:
  operator.nk            signs the account JWTs (nats-config needs it, serve does not)
  accounts/NAME.nk       each --accounts account's key, and SYS's
  accounts/NAME.pub      its public key (0644)
  accounts/NAME.sk.nk    its signing key, which signs the users placed there (not SYS)

Creates only missing files (seeds mode 0600, folders 0700 when new; .pub files
0644), never overwrites one, and prints public keys only. Run it again with more
--accounts to add accounts; then regenerate the server config with nats-config.

Exit status: 0 the files exist (created now or before); 2 a usage error (--accounts
without --mode operator), an account name that is not [A-Za-z0-9_-]{1,64}, a --dir
where files cannot be created, or an existing key file that is not a valid key."""


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create the service's key files",
                          description=DESCRIPTION, epilog=EPILOG, formatter_class=FORMATTER)
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create missing key files",
                              description=DESCRIPTION, epilog=INIT_EPILOG,
                              formatter_class=FORMATTER)
    init.add_argument("--dir", type=Path, required=True, help="key directory")
    init.add_argument("--mode", choices=["config", "operator"], default="config",
                      help="nats.mode the keys are for: config (accounts in the server "
                           "config) or operator (adds operator and account keys) "
                           "(default: config)")
    init.add_argument("--accounts", default="",
                      help="comma-separated target accounts (e.g. APP,OPS); only with --mode "
                           "operator (config mode accounts need no keys)")
    init.set_defaults(handler=run_init, usage_error=init.error)
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
    from authsvc.errors import ConfigError
    from authsvc.natsconf.keystore import SYSTEM_ACCOUNT, KeyStore

    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    operator = args.mode == "operator"
    if accounts and not operator:
        # Accounts get keys only in operator mode; ignoring the option would leave whoever
        # gave it believing APP's keys exist.
        args.usage_error("--accounts needs --mode operator: in config mode the accounts are "
                         "written into the nats-server config and have no keys")
    if operator and SYSTEM_ACCOUNT not in accounts:
        accounts.append(SYSTEM_ACCOUNT)
    store = KeyStore(args.dir)
    try:
        created = store.ensure(operator_mode=operator, accounts=accounts)
    except OSError as exc:  # e.g. --dir under a read-only or missing mount: no traceback
        raise ConfigError(f"cannot create key files in {args.dir} (--dir): "
                          f"{exc.strerror}") from None
    for path in created:
        print(f"created {path}")
    print(f"issuer (callout account) {store.issuer().public_key}")
    print(f"service user             {store.service().public_key}")
    print(f"xkey                     {store.xkey().public_key}")
    print(f"audit checkpoints        {store.audit_signer().public_key}  "
          "(give this to whoever verifies the audit log)")
    return 0
