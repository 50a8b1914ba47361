"""The key directory: seeds on disk with 0600 permissions, created by ``authsvc keys init``.

Layout (file names are a stable contract; docs/deployment.md):
  issuer.nk                config mode: the auth_callout ``issuer`` account key;
                           operator mode: the callout account's key (signs responses)
  service.nk               the service's own user nkey (listed in auth_users)
  xkey.xk                  curve key for request/response encryption
  audit.nk                 signs audit checkpoints (its public key verifies the log)
  operator.nk              operator mode only: signs account JWTs (needed by nats-config only)
  accounts/<NAME>.nk       operator mode: account identity key (needed by nats-config only)
  accounts/<NAME>.pub      operator mode: that account's public key (read by the service)
  accounts/<NAME>.sk.nk    operator mode: account signing key; signs that account's users
                           (never made for the system account: nobody is placed there)
Seeds are never printed; commands show public keys only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from authsvc.errors import ConfigError
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.xkeys import CurveKeyPair

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SYSTEM_ACCOUNT = "SYS"


@dataclass(frozen=True)
class KeyStore:
    """Reads (and on request creates) the seeds in one directory."""

    dir: Path

    def _read(self, name: str) -> str:
        path = self.dir / name
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            hint = (f"`authsvc keys init --dir {self.dir} --mode operator --accounts NAME`, "
                    "then regenerate the nats-server config with `authsvc nats-config`"
                    if name.startswith("accounts/") or name == "operator.nk"
                    else f"`authsvc keys init --dir {self.dir}`")
            raise ConfigError(f"key file {path} is missing; create it with {hint}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read key file {path}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"key file {path} is empty")
        return text

    def _pair(self, name: str, prefix: Prefix) -> KeyPair:
        try:
            pair = KeyPair.from_seed(self._read(name))
        except nkeys.KeyFormatError:
            raise ConfigError(f"key file {self.dir / name} does not hold a valid nkey seed") \
                from None
        if pair.prefix != prefix:
            raise ConfigError(f"key file {self.dir / name} holds a key of kind "
                              f"{pair.prefix.name}, expected {prefix.name}")
        return pair

    def issuer(self) -> KeyPair:
        return self._pair("issuer.nk", Prefix.ACCOUNT)

    def service(self) -> KeyPair:
        return self._pair("service.nk", Prefix.USER)

    def operator(self) -> KeyPair:
        return self._pair("operator.nk", Prefix.OPERATOR)

    def account(self, name: str) -> KeyPair:
        return self._pair(f"accounts/{_checked(name)}.nk", Prefix.ACCOUNT)

    def account_public(self, name: str) -> str:
        """An account's public key, from ``.pub`` (or, for older key dirs, its seed)."""
        pub = self.dir / f"accounts/{_checked(name)}.pub"
        if pub.is_file():
            key = pub.read_text().strip()
            if not nkeys.is_public_key(key, Prefix.ACCOUNT):
                raise ConfigError(f"{pub} does not hold an account public key")
            return key
        return self.account(name).public_key

    def account_signing(self, name: str) -> KeyPair:
        return self._pair(f"accounts/{_checked(name)}.sk.nk", Prefix.ACCOUNT)

    def signing_accounts(self) -> list[str]:
        """Account names with a signing key on disk (what the service can mint for)."""
        folder = self.dir / "accounts"
        if not folder.is_dir():
            return []
        names = (p.name[: -len(".sk.nk")] for p in folder.glob("*.sk.nk"))
        return sorted(name for name in names if name != SYSTEM_ACCOUNT)

    def audit_signer(self, name: str = "audit.nk") -> KeyPair:
        """The key that signs audit checkpoints; kept apart from every JWT-signing key."""
        return self._pair(name, Prefix.USER)

    def xkey(self) -> CurveKeyPair:
        try:
            return CurveKeyPair.from_seed(self._read("xkey.xk"))
        except ValueError:
            raise ConfigError(f"key file {self.dir / 'xkey.xk'} does not hold a curve seed") \
                from None

    def ensure(self, *, operator_mode: bool, accounts: Sequence[str] = ()) -> list[Path]:
        """Create every missing key file; never overwrite. Returns the files created."""
        wanted: list[tuple[str, str]] = [
            ("issuer.nk", nkeys.create_seed(Prefix.ACCOUNT)),
            ("service.nk", nkeys.create_seed(Prefix.USER)),
            ("xkey.xk", CurveKeyPair.create().seed),
            ("audit.nk", nkeys.create_seed(Prefix.USER)),
        ]
        if operator_mode:
            wanted.append(("operator.nk", nkeys.create_seed(Prefix.OPERATOR)))
            for name in accounts:
                _checked(name)
                wanted.append((f"accounts/{name}.nk", nkeys.create_seed(Prefix.ACCOUNT)))
                if name != SYSTEM_ACCOUNT:
                    wanted.append((f"accounts/{name}.sk.nk",
                                   nkeys.create_seed(Prefix.ACCOUNT)))
        created = []
        for name, seed in wanted:
            path = self.dir / name
            if path.exists():
                continue
            write_secret(path, seed)
            created.append(path)
        if operator_mode:
            created.extend(self._write_public_keys(accounts))
        return created

    def _write_public_keys(self, accounts: Sequence[str]) -> list[Path]:
        written = []
        for name in accounts:
            path = self.dir / f"accounts/{name}.pub"
            if not path.exists():
                path.write_text(self.account(name).public_key + "\n")
                written.append(path)
        return written


def _checked(name: str) -> str:
    if not ACCOUNT_NAME.match(name):
        raise ConfigError(f"account name {name!r} must match {ACCOUNT_NAME.pattern}")
    return name


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` (0600, parent 0700 if new) holding ``text``; FileExistsError if it
    exists: a key file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
