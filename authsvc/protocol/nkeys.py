"""NATS nkeys: typed key strings and ed25519 signing, wire-compatible with nats-io/nkeys.

Encoding (nkeys ``strkey.go``):

* public key = ``base32_nopad(prefix || raw32 || crc16_le)``, 56 characters;
* seed = ``base32_nopad(b1 || b2 || raw32 || crc16_le)`` with ``b1 = SEED | prefix >> 5`` and
  ``b2 = (prefix & 31) << 3``, 58 characters;
* crc16 is CRC-16/XMODEM (poly 0x1021, init 0) over everything before it, little-endian.

Signing keys (operator, account, user, server, cluster) are ed25519; the 32 raw seed bytes are
the ed25519 seed. Curve (``X``) keys live in :mod:`authsvc.protocol.xkeys`.
"""

from __future__ import annotations

import binascii
import functools
import os
import re
from enum import IntEnum
from functools import lru_cache
from typing import TypeGuard

import nacl.exceptions
import nacl.signing

__all__ = [
    "PUBLIC_PREFIXES",
    "SIGNING_PREFIXES",
    "KeyFormatError",
    "KeyPair",
    "Prefix",
    "create_seed",
    "decode_public_key",
    "decode_seed",
    "encode_public_key",
    "encode_seed",
    "is_public_key",
    "parse_public_key",
    "verify",
]


class Prefix(IntEnum):
    """The prefix byte of an encoded key; it decides the key's first base32 letter."""

    SEED = 18 << 3  # S...
    PRIVATE = 15 << 3  # P...
    SERVER = 13 << 3  # N...
    CLUSTER = 2 << 3  # C...
    OPERATOR = 14 << 3  # O...
    ACCOUNT = 0  # A...  (falsy: always compare with ``is None``)
    USER = 20 << 3  # U...
    CURVE = 23 << 3  # X...


class KeyFormatError(ValueError):
    """A key or seed string is not a well-formed nkey of the expected kind.

    Messages never contain the offending key: it may be a seed pasted in the wrong place.
    """


# Prefixes that may appear on a public key or inside a seed (nkeys checkValidPublicPrefixByte).
PUBLIC_PREFIXES = frozenset(
    {Prefix.SERVER, Prefix.CLUSTER, Prefix.OPERATOR, Prefix.ACCOUNT, Prefix.USER, Prefix.CURVE}
)
# Public prefixes whose keys are ed25519 and can sign JWTs.
SIGNING_PREFIXES = PUBLIC_PREFIXES - {Prefix.CURVE}

_RAW_KEY_LEN = 32
_PUBLIC_KEY_CHARS = 56  # 1 + 32 + 2 = 35 bytes = 280 bits = 56 base32 characters, no slack
_SEED_CHARS = 58  # 2 + 32 + 2 = 36 bytes = 288 bits -> 58 characters
_VERIFY_CACHE_SIZE = 1024
# RFC 4648 base32 without padding, upper case only (Go's StdEncoding refuses lower case too).
_BASE32 = re.compile(r"[A-Z2-7]*")
# Maps the RFC 4648 alphabet onto int()'s base-32 digits, so decoding runs in C.
_RFC4648_TO_INT = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV"
)
_SIGNATURE_LEN = 64


def _crc16(data: bytes) -> int:
    # binascii.crc_hqx with init 0 is exactly CRC-16/XMODEM (nkeys crc16.go), in C.
    return binascii.crc_hqx(data, 0)


_B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Every 10-bit value as its two base32 characters: encoding runs 26 table lookups per key
# instead of base64.b32encode's pure-Python loop (3.11), which showed up on every connect.
_B32_PAIRS = tuple(a + b for a in _B32_ALPHABET for b in _B32_ALPHABET)


def b32encode_nopad(raw: bytes) -> str:
    """RFC 4648 base32 without padding (Go ``base32.StdEncoding.WithPadding(NoPadding)``)."""
    bits = len(raw) * 8
    chars = -(-bits // 5)
    value = int.from_bytes(raw, "big") << (chars * 5 - bits)
    odd = chars % 2
    if odd:
        value <<= 5
    top = (chars + odd) * 5 - 10
    text = "".join([_B32_PAIRS[(value >> shift) & 1023] for shift in range(top, -1, -10)])
    return text[:-1] if odd else text


_b32encode = b32encode_nopad


def _checked_body(text: str | bytes, expected_chars: int) -> bytes:
    """Base32-decode a key string of a fixed length and strip a valid CRC16 trailer."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise KeyFormatError("key is not ASCII") from None
    if len(text) != expected_chars:
        raise KeyFormatError(f"key must be {expected_chars} characters")
    if not _BASE32.fullmatch(text):
        raise KeyFormatError("key is not base32")
    # base64.b32decode is pure Python in 3.11 and ran three times per request. Trailing bits
    # that do not fill a byte are dropped, as Go's (non-strict) base32 decoder does.
    bits = len(text) * 5
    raw = (int(text.translate(_RFC4648_TO_INT), 32) >> (bits % 8)).to_bytes(bits // 8, "big")
    body = raw[:-2]
    if _crc16(body) != int.from_bytes(raw[-2:], "little"):
        raise KeyFormatError("key checksum mismatch")
    return body


def _check_public_prefix(prefix: Prefix) -> None:
    if prefix not in PUBLIC_PREFIXES:
        raise KeyFormatError(f"{prefix!r} is not a public key prefix")


def _check_raw(raw: bytes) -> None:
    if len(raw) != _RAW_KEY_LEN:
        raise KeyFormatError(f"raw key must be {_RAW_KEY_LEN} bytes")


def encode_public_key(prefix: Prefix, raw: bytes) -> str:
    """Encode 32 raw public-key bytes as an nkey string (``A...``, ``U...``, ``X...``)."""
    _check_public_prefix(prefix)
    _check_raw(raw)
    body = bytes((prefix,)) + raw
    return _b32encode(body + _crc16(body).to_bytes(2, "little"))


@functools.lru_cache(maxsize=4096)
def parse_public_key(key: str) -> tuple[Prefix, bytes]:
    """Validate any public nkey and return its type and 32 raw bytes (cached: server,
    issuer and client keys repeat on every connect; failures are not cached)."""
    body = _checked_body(key, _PUBLIC_KEY_CHARS)
    try:
        found = Prefix(body[0])
    except ValueError:
        raise KeyFormatError("unknown key prefix") from None
    if found not in PUBLIC_PREFIXES:
        raise KeyFormatError("not a public key")
    return found, body[1:]


def decode_public_key(key: str, *, prefix: Prefix | None = None) -> bytes:
    """Return the 32 raw bytes of a public nkey, validating base32, length, CRC and prefix.

    With ``prefix=None`` any public prefix is accepted; otherwise only that one.
    """
    found, raw = parse_public_key(key)
    if prefix is not None and found is not prefix:
        raise KeyFormatError(f"expected a key of kind {prefix.name}, got {found.name}")
    return raw


def is_public_key(key: object, prefix: Prefix) -> TypeGuard[str]:
    """True when ``key`` is a well-formed public nkey with exactly this prefix."""
    if not isinstance(key, str):
        return False
    try:
        decode_public_key(key, prefix=prefix)
    except KeyFormatError:
        return False
    return True


def encode_seed(prefix: Prefix, raw: bytes) -> str:
    """Encode a 32-byte seed for a key of type ``prefix`` as an ``S...`` string."""
    _check_public_prefix(prefix)
    _check_raw(raw)
    # Two header bytes so that both the 'S' and the key-type letter are printable (strkey.go).
    body = bytes((Prefix.SEED | (prefix >> 5), (prefix & 31) << 3)) + raw
    return _b32encode(body + _crc16(body).to_bytes(2, "little"))


def decode_seed(seed: str | bytes) -> tuple[Prefix, bytes]:
    """Split an ``S...`` seed into its key type and 32 raw bytes."""
    body = _checked_body(seed, _SEED_CHARS)
    if body[0] & 0b11111000 != Prefix.SEED:
        raise KeyFormatError("not a seed")
    type_byte = (body[0] & 0b00000111) << 5 | (body[1] & 0b11111000) >> 3
    try:
        prefix = Prefix(type_byte)
    except ValueError:
        raise KeyFormatError("unknown seed key type") from None
    if prefix not in PUBLIC_PREFIXES:
        raise KeyFormatError("unknown seed key type")
    return prefix, body[2:]


def create_seed(prefix: Prefix) -> str:
    """A fresh random seed (os.urandom) for a key of type ``prefix``."""
    return encode_seed(prefix, os.urandom(_RAW_KEY_LEN))


@lru_cache(maxsize=_VERIFY_CACHE_SIZE)
def _verify_key(public_key: str) -> nacl.signing.VerifyKey:
    # Server keys repeat on every request; decoding + VerifyKey construction is worth caching.
    # lru_cache does not cache exceptions, so garbage keys never occupy a slot.
    prefix, raw = parse_public_key(public_key)
    if prefix not in SIGNING_PREFIXES:
        raise KeyFormatError("curve keys cannot verify signatures")
    return nacl.signing.VerifyKey(raw)


def verify(public_key: str, data: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid ed25519 signature of ``data`` by ``public_key``.

    Never raises for a bad signature or a malformed key: both are simply ``False``.
    """
    if len(signature) != _SIGNATURE_LEN:
        return False
    try:
        _verify_key(public_key).verify(data, signature)
    except (KeyFormatError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


class KeyPair:
    """An ed25519 nkey pair (operator, account, user, server or cluster).

    The seed leaves the object only through :attr:`seed`, so every use is greppable;
    ``repr`` shows the public key alone.
    """

    __slots__ = ("_prefix", "_public_key", "_signing_key")

    def __init__(self, prefix: Prefix, raw_seed: bytes) -> None:
        if prefix not in SIGNING_PREFIXES:
            raise KeyFormatError(f"{prefix.name} keys cannot sign")
        _check_raw(raw_seed)
        self._prefix = prefix
        self._signing_key = nacl.signing.SigningKey(raw_seed)
        self._public_key = encode_public_key(prefix, bytes(self._signing_key.verify_key))

    @classmethod
    def from_seed(cls, seed: str | bytes) -> KeyPair:
        """Load an ``S...`` seed; a curve seed (``SX...``) or a malformed one raises."""
        prefix, raw = decode_seed(seed)
        return cls(prefix, raw)

    @classmethod
    def create(cls, prefix: Prefix) -> KeyPair:
        """A fresh random key pair of the given type."""
        return cls(prefix, os.urandom(_RAW_KEY_LEN))

    @property
    def public_key(self) -> str:
        return self._public_key

    @property
    def prefix(self) -> Prefix:
        return self._prefix

    @property
    def seed(self) -> str:
        """The encoded ``S...`` seed: the secret. The only way out of the object."""
        return encode_seed(self._prefix, bytes(self._signing_key))

    def sign(self, data: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``data``."""
        return bytes(self._signing_key.sign(data).signature)

    def __repr__(self) -> str:
        return f"KeyPair({self._public_key})"
