"""The checkpoint-key options shared by ``audit verify``, ``export`` and ``report``.

A key given on the command line is an input: a malformed one is a usage error (exit 2)
found before any file is read, not a verification result. Reporting it as an untrusted
signer would read as tampering. Error messages never repeat the value: a seed pasted
where the public key belongs must not end up in a terminal log.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from authsvc.errors import ConfigError
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyFormatError, Prefix

WHERE_KEYS = ("the audit public key, U... (`authsvc keys init` prints it as 'audit "
              "checkpoints', `authsvc demo` at its end)")


def problem(value: str) -> str | None:
    """Why ``value`` is not a checkpoint public key, or None when it is one."""
    try:
        prefix, _ = nkeys.parse_public_key(value)
    except KeyFormatError as exc:
        if _is_seed(value):
            return ("this is a seed (a private key), not a public key: give the public key "
                    "(U...) and keep the seed secret")
        return f"not a public nkey ({exc}); expected {WHERE_KEYS}"
    if prefix is not Prefix.USER:
        kind = prefix.name.lower()
        article = "an" if kind[0] in "aeiou" else "a"
        return (f"{article} {kind} public key, but checkpoints are signed with a user key: "
                f"{WHERE_KEYS}")
    return None


def _is_seed(value: str) -> bool:
    try:
        nkeys.decode_seed(value)
    except KeyFormatError:
        return False
    return True


def checkpoint_key(text: str) -> str:
    """argparse ``type`` for ``--key``: a well-formed user public nkey."""
    value = text.strip()
    reason = problem(value)
    if reason is not None:
        raise argparse.ArgumentTypeError(reason)
    return value


def add_key_options(parser: Any) -> None:
    """--key (repeatable), --key-file, --keys-dir: mutually exclusive."""
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", action="append", default=[], type=checkpoint_key,
                      metavar="PUBLIC_KEY",
                      help="trusted checkpoint public key (U..., the audit key `keys init` "
                           "prints); repeatable, e.g. old and new after a key change")
    keys.add_argument("--key-file", type=Path,
                      help="file holding the checkpoint public key(s), whitespace-separated")
    keys.add_argument("--keys-dir", type=Path, metavar="DIR",
                      help="the service's key directory: its audit.nk gives the key")


def trusted_keys(args: argparse.Namespace) -> frozenset[str] | None:
    """The public keys checkpoints must be signed with, or None if none were given."""
    from authsvc.natsconf.keystore import KeyStore

    if args.key:
        return frozenset(args.key)
    if args.key_file:
        return _from_file(args.key_file)
    if args.keys_dir:
        return frozenset({KeyStore(args.keys_dir).audit_signer().public_key})
    return None


def _from_file(path: Path) -> frozenset[str]:
    try:
        words = path.read_text().split()
    except OSError as exc:
        raise ConfigError(f"cannot read --key-file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--key-file {path} is not a text file of public keys") from None
    if not words:
        raise ConfigError(f"--key-file {path} holds no key")
    for number, word in enumerate(words, start=1):
        reason = problem(word)
        if reason is not None:
            raise ConfigError(f"--key-file {path}, key {number}: {reason}")
    return frozenset(words)


NOT_CHECKED = "checkpoint signatures NOT checked: no key given"


def unsigned_note() -> str:
    """The lines every text output adds when it ran without a key."""
    return ("note: checkpoint signatures were NOT checked (no key given): the result covers "
            "the hash\n      chain only; nothing here shows that the service's audit key "
            "signed it. Check them with\n      --key AUDIT_PUBLIC_KEY (U...; `authsvc keys init` "
            "prints it as 'audit checkpoints'),\n      --key-file FILE or --keys-dir "
            "KEYS_DIR.")


def add_anchor_option(parser: Any) -> None:
    """--anchor SEQ:HASH, for one chain whose oldest files retention deleted."""
    parser.add_argument("--anchor", metavar="SEQ:HASH",
                        help="the chain's records up to SEQ were deleted (retention): the "
                             "first record given must follow record SEQ, whose record_hash "
                             "is HASH: the seq and record_hash of the last record of the "
                             "deleted files (their closing audit.checkpoint), kept for this")


def anchor_of(args: Any) -> Any:
    """The ChainHead --anchor names, or None (ConfigError when it is not SEQ:HASH)."""
    return parse_anchor(args.anchor) if getattr(args, "anchor", None) else None


def parse_anchor(text: str) -> Any:
    """``SEQ:HASH`` as the chain head the first record must follow (ConfigError if not)."""
    from authsvc.audit.chain import ChainHead
    from authsvc.errors import ConfigError

    seq, _, digest = text.partition(":")
    if not (seq.isascii() and seq.isdigit() and int(seq) > 0 and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)):
        raise ConfigError("--anchor must be SEQ:HASH, a positive seq and the 64 hex digits "
                          "of that record's record_hash")
    return ChainHead(seq=int(seq), hash=digest)
