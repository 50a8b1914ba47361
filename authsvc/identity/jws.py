"""Compact JWS (RFC 7515) parsing and signature checks for bearer tokens. Pure, no I/O.

Only what an OIDC relying party needs, and deliberately less than the RFC allows:

* exactly three base64url parts (five would be JWE, which we never accept: "JWT bombs",
  PBES2 ``p2c``), strict alphabet, no padding (RFC 7515 section 2, base64url without ``=``);
* header and payload are JSON objects without duplicate member names (RFC 7515 4: a
  duplicate MUST be rejected or the last one used; we reject);
* ``jku``, ``x5u``, ``jwk``, ``x5c`` are never dereferenced nor trusted: their presence is
  refused outright (node-jose CVE-2018-0114, authlib CVE-2026-27962);
* any ``crit`` is refused, since we implement no extension (RFC 7515 4.1.11; RFC 7797
  ``b64=false`` bypasses as in joserfc GHSA-wphv-vfrh-23q5);
* only asymmetric algorithms are known at all, so ``none`` and ``HS*`` (key confusion,
  pyjwt CVE-2022-29217) can never reach a key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authsvc.domain import Deny, DenyReason

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
# RFC 7518 3.4: ES256 uses P-256, ES384 P-384, ES512 P-521; r || s fixed-width big endian.
_EC_CURVES: dict[str, tuple[str, int]] = {
    "ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
# Header parameters that point at or embed keys, or switch on JWE/unencoded payloads.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "enc", "zip", "b64"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_MAX_KID_CHARS = 256


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A structurally valid, *unverified* JWS. Nothing in it is trusted yet."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None
    typ: str | None


def b64url_decode(part: str) -> bytes | None:
    """Strict unpadded base64url, or None."""
    if not _B64URL.match(part) or len(part) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


# One decoder for all calls: json.loads(object_pairs_hook=...) builds a new one each time.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse(token: str, *, max_bytes: int) -> ParsedToken | Deny:
    """Split, decode and header-check a compact JWS. Signature and claims are not checked."""
    if len(token) > max_bytes:
        return Deny(DenyReason.TOKEN_TOO_LARGE, f"token of {len(token)} bytes > {max_bytes}")
    parts = token.split(".")
    if len(parts) != 3:
        return Deny(DenyReason.TOKEN_MALFORMED, f"{len(parts)} dot-separated parts, want 3")
    raw_header, raw_claims, raw_sig = (b64url_decode(p) for p in parts)
    if raw_header is None or raw_claims is None or raw_sig is None:
        return Deny(DenyReason.TOKEN_MALFORMED, "a part is not unpadded base64url")
    header, claims = _json_object(raw_header), _json_object(raw_claims)
    if header is None or claims is None:
        return Deny(DenyReason.TOKEN_MALFORMED, "header or payload is not a JSON object")
    refused = _check_header(header)
    if refused is not None:
        return refused
    kid, typ = header.get("kid"), header.get("typ")
    if (kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID_CHARS)) or (
            typ is not None and not isinstance(typ, str)):
        return Deny(DenyReason.TOKEN_MALFORMED, "kid or typ is not a short string")
    if not raw_sig:
        return Deny(DenyReason.TOKEN_SIGNATURE_INVALID, "empty signature")
    return ParsedToken(header=header, claims=claims,
                       signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
                       signature=raw_sig, alg=header["alg"], kid=kid, typ=typ)


def _check_header(header: Mapping[str, Any]) -> Deny | None:
    forbidden = sorted(FORBIDDEN_HEADERS.intersection(header))
    if forbidden:
        return Deny(DenyReason.TOKEN_HEADER_FORBIDDEN, f"header carries {forbidden}")
    if "crit" in header:
        return Deny(DenyReason.TOKEN_CRIT_UNSUPPORTED, "no crit extension is supported")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        shown = alg if isinstance(alg, str) and len(alg) <= 16 else type(alg).__name__
        return Deny(DenyReason.TOKEN_ALG_NOT_ALLOWED, f"alg {shown!r} is not asymmetric")
    return None


def key_fits(alg: str, key: PublicKey) -> bool:
    """Whether ``key`` is of the type and curve that ``alg`` requires (RFC 7518 3.1)."""
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg in _EC_CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and \
            key.curve.name == _EC_CURVES[alg][0]
    return alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey)


def signature_valid(token: ParsedToken, key: PublicKey) -> bool:
    """Verify the token's signature with ``key`` under the token's (already allowed) alg."""
    alg, data, sig = token.alg, token.signing_input, token.signature
    if not key_fits(alg, key):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            digest = _HASHES[alg[2:]]()
            pad: padding.AsymmetricPadding = padding.PKCS1v15() if alg[0] == "R" else \
                padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            key.verify(sig, data, pad, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(_ecdsa_der(sig, _EC_CURVES[alg][1]), data,
                       ec.ECDSA(_HASHES[alg[2:]]()))
        else:
            key.verify(sig, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _ecdsa_der(sig: bytes, width: int) -> bytes:
    # JWS carries R || S (RFC 7518 3.4), cryptography wants DER. r = s = 0 is encoded as
    # is and refused by OpenSSL's range check (CVE-2022-21449 "psychic signatures").
    if len(sig) != 2 * width:
        raise ValueError("ECDSA signature has the wrong length")
    return encode_dss_signature(int.from_bytes(sig[:width], "big"),
                                int.from_bytes(sig[width:], "big"))
