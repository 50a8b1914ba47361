"""JWK Set (RFC 7517) import: public verification keys only, weak keys set aside. Pure.

Keys are matched by ``kid`` against a dict only (never used in a path or query: "kid
injection"). Keys whose ``use`` is not ``sig`` or whose ``key_ops`` lack ``verify`` are
skipped (RFC 7517 4.2, 4.3). RSA keys under ``min_rsa_bits`` are recorded as weak so a
token naming one is refused with its own reason instead of looking like an unknown kid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authsvc.identity.jws import PublicKey, b64url_decode

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


class KeyImportError(ValueError):
    """A JWK that cannot be turned into a public key."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key from a JWKS; ``alg`` is the JWK's own ``alg`` when it names one.

    ``fingerprint`` is the SHA-256 of the key's SubjectPublicKeyInfo: the same key fetched
    again in a later JWKS has the same fingerprint, another key under the same kid does not.
    """

    kid: str | None
    key: PublicKey
    alg: str | None = None
    fingerprint: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spki = self.key.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        object.__setattr__(self, "fingerprint", hashlib.sha256(spki).digest())


@dataclass(frozen=True, slots=True)
class KeySet:
    """Usable keys by kid, keys without kid, and kids refused as weak (with why)."""

    by_kid: Mapping[str, VerificationKey] = field(default_factory=dict)
    unnamed: tuple[VerificationKey, ...] = ()
    weak: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.by_kid) + len(self.unnamed)

    def candidates(self, kid: str | None) -> tuple[VerificationKey, ...]:
        """Keys a token with this kid may be checked against (all keys when it has none)."""
        if kid is None:
            return (*self.by_kid.values(), *self.unnamed)
        found = self.by_kid.get(kid)
        return (found,) if found else ()


def _int(member: object) -> int:
    raw = b64url_decode(member) if isinstance(member, str) else None
    if not raw:
        raise KeyImportError("RSA member is not base64url")
    return int.from_bytes(raw, "big")


def public_key(jwk: Mapping[str, Any]) -> PublicKey:
    """The public key of one JWK; private members, if an IdP leaks them, are ignored."""
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_int(jwk.get("e")), _int(jwk.get("n"))).public_key()
        if kty == "EC":
            curve = _CURVES.get(str(jwk.get("crv")))
            x, y = b64url_decode(str(jwk.get("x", "!"))), b64url_decode(str(jwk.get("y", "!")))
            if curve is None or not x or not y:
                raise KeyImportError("unsupported curve or bad coordinates")
            size = (curve.key_size + 7) // 8
            if len(x) != size or len(y) != size:
                raise KeyImportError("EC coordinates have the wrong length")
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            x = b64url_decode(str(jwk.get("x", "!")))
            if not x or len(x) != 32:
                raise KeyImportError("Ed25519 key is not 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(x)
    except (ValueError, TypeError) as exc:
        raise KeyImportError(str(exc)) from None
    raise KeyImportError(f"unsupported key type {str(kty)[:16]!r}")


def _usable(jwk: Mapping[str, Any]) -> bool:
    use, ops = jwk.get("use"), jwk.get("key_ops")
    if use is not None and use != "sig":
        return False
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def import_key_set(keys: Sequence[object], *, min_rsa_bits: int = 2048) -> KeySet:
    """Build a KeySet from the ``keys`` member of a JWKS; unusable entries are skipped."""
    by_kid: dict[str, VerificationKey] = {}
    unnamed: list[VerificationKey] = []
    weak: dict[str, str] = {}
    for entry in keys:
        if not isinstance(entry, dict) or not _usable(entry):
            continue
        kid, alg = entry.get("kid"), entry.get("alg")
        kid = kid if isinstance(kid, str) and kid else None
        try:
            key = public_key(entry)
        except KeyImportError:
            continue
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < min_rsa_bits:
            if kid is not None:
                weak[kid] = f"RSA key of {key.key_size} bits < {min_rsa_bits}"
            continue
        item = VerificationKey(kid=kid, key=key, alg=alg if isinstance(alg, str) else None)
        if kid is None:
            unnamed.append(item)
        elif kid not in by_kid:  # a duplicate kid keeps the first key, never both
            by_kid[kid] = item
    return KeySet(by_kid=by_kid, unnamed=tuple(unnamed), weak=weak)
