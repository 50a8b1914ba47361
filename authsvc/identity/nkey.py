"""nkey proof of possession: the client signed the server's nonce with its user nkey.

nats-server puts the nonce it sent in ``client_info.nonce`` and the client's ed25519 signature
in ``connect_opts.sig`` (nats-server ``server/auth_callout.go``). nats-py sends standard base64,
nats.go raw-URL base64; both are accepted. The identity is the nkey public key.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from authsvc.domain import ConnectRequest, Deny, DenyReason, Identity, IdentitySource
from authsvc.protocol import nkeys

_MAX_SIG_CHARS = 256  # an ed25519 signature is 64 bytes: 88 chars of base64


def decode_signature(sig: str) -> bytes | None:
    """Decode std or URL-safe base64, padded or not; None if it is not a 64-byte signature."""
    if not sig or len(sig) > _MAX_SIG_CHARS:
        return None
    text = sig.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


class NkeyVerifier:
    """Verifies ``connect_opts.nkey`` + ``sig`` over ``client_info.nonce``."""

    source = IdentitySource.NKEY

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        public_key = request.connect.nkey
        if not public_key:
            return None
        if not nkeys.is_public_key(public_key, nkeys.Prefix.USER):
            return Deny(DenyReason.CREDENTIALS_MALFORMED, "connect nkey is not a user public key")
        if not request.client.nonce:
            return Deny(DenyReason.NONCE_MISSING, "server sent no nonce; configure an nkey user")
        signature = decode_signature(request.connect.sig)
        if signature is None:
            return Deny(DenyReason.CREDENTIALS_MALFORMED, "connect sig is not a base64 signature")
        if not nkeys.verify(public_key, request.client.nonce.encode(), signature):
            return Deny(DenyReason.NKEY_SIGNATURE_INVALID, "nonce signature does not verify")
        return Identity(
            source=IdentitySource.NKEY,
            principal=f"nkey:{public_key}",
            subject=public_key,
        )
