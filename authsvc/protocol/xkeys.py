"""Curve (x25519) nkeys and the ``xkv1`` sealed-message format of nats-io/nkeys ``xkeys.go``.

Wire format: ``b"xkv1" || nonce(24) || box`` where ``box`` is NaCl ``crypto_box``
(X25519 + XSalsa20-Poly1305, 16-byte MAC first). The raw 32-byte seed of an ``SX...`` seed is
used directly as the X25519 private scalar (``ckp.seed`` in xkeys.go); libsodium clamps it the
same way Go's ``curve25519.ScalarBaseMult`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

import nacl.exceptions
import nacl.public

from authsvc.protocol.nkeys import (
    KeyFormatError,
    Prefix,
    decode_public_key,
    decode_seed,
    encode_public_key,
    encode_seed,
)

__all__ = ["XKEY_VERSION", "CurveKeyPair", "XKeyError"]

XKEY_VERSION = b"xkv1"  # xkeys.go XKeyVersionV1
_NONCE_LEN = 24
_MAC_LEN = 16
_HEADER_LEN = len(XKEY_VERSION) + _NONCE_LEN
_RAW_KEY_LEN = 32
_BOX_CACHE_SIZE = 256


class XKeyError(ValueError):
    """Sealing or opening failed: bad key, wrong version tag, truncated or forged box."""


class CurveKeyPair:
    """An x25519 key pair (``X...`` public, ``SX...`` seed) that seals and opens ``xkv1`` boxes.

    ``Box`` objects (which cache the X25519 shared secret) are kept per peer key in a bounded
    LRU: a service talks to few servers, and the shared-key derivation dominates the cost.
    """

    __slots__ = ("_box", "_private", "_public_key")

    def __init__(self, raw_seed: bytes) -> None:
        if len(raw_seed) != _RAW_KEY_LEN:
            raise XKeyError(f"curve seed must be {_RAW_KEY_LEN} bytes")
        self._private = nacl.public.PrivateKey(raw_seed)
        self._public_key = encode_public_key(Prefix.CURVE, bytes(self._private.public_key))
        self._box: Callable[[str], nacl.public.Box] = lru_cache(maxsize=_BOX_CACHE_SIZE)(
            self._new_box
        )

    @classmethod
    def create(cls) -> CurveKeyPair:
        """A fresh random curve key pair."""
        return cls(os.urandom(_RAW_KEY_LEN))

    @classmethod
    def from_seed(cls, seed: str | bytes) -> CurveKeyPair:
        """Load an ``SX...`` seed; any other seed type or a malformed seed raises XKeyError."""
        try:
            prefix, raw = decode_seed(seed)
        except KeyFormatError as exc:
            raise XKeyError(f"bad curve seed: {exc}") from None
        if prefix is not Prefix.CURVE:
            raise XKeyError("not a curve seed")
        return cls(raw)

    @property
    def public_key(self) -> str:
        return self._public_key

    @property
    def seed(self) -> str:
        """The encoded ``SX...`` seed: the secret. The only way out of the object."""
        return encode_seed(Prefix.CURVE, bytes(self._private))

    def _new_box(self, peer_public: str) -> nacl.public.Box:
        try:
            raw = decode_public_key(peer_public, prefix=Prefix.CURVE)
            return nacl.public.Box(self._private, nacl.public.PublicKey(raw))
        except (KeyFormatError, nacl.exceptions.CryptoError, TypeError) as exc:
            # CryptoError covers libsodium refusing a low-order peer point (all-zero secret).
            raise XKeyError(f"bad peer curve key: {exc}") from None

    def seal(self, message: bytes, recipient_public: str) -> bytes:
        """Encrypt ``message`` to ``recipient_public`` with a fresh random nonce."""
        box = self._box(recipient_public)
        nonce = os.urandom(_NONCE_LEN)
        # Box.encrypt returns nonce || mac || ciphertext: exactly the xkv1 body.
        return XKEY_VERSION + bytes(box.encrypt(message, nonce))

    def open(self, data: bytes, sender_public: str) -> bytes:
        """Decrypt an ``xkv1`` box from ``sender_public``; XKeyError on anything wrong."""
        if len(data) < _HEADER_LEN + _MAC_LEN:
            raise XKeyError("sealed message too short")
        if data[: len(XKEY_VERSION)] != XKEY_VERSION:
            raise XKeyError("unknown sealed message version")
        box = self._box(sender_public)
        try:
            return bytes(box.decrypt(data[_HEADER_LEN:], data[len(XKEY_VERSION) : _HEADER_LEN]))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise XKeyError("sealed message failed authentication") from None

    def __repr__(self) -> str:
        return f"CurveKeyPair({self._public_key})"
