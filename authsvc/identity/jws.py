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

This runs on every connect, so the work is arranged to be done once: the alphabet is
checked over the whole token in one ``bytes.translate``, a header segment seen before is
not decoded again (an IdP signs all its tokens with a handful of headers), and the hash and
padding objects of each algorithm are built at import.
"""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authsvc.domain import Deny, DenyReason

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
# RFC 7518 3.3 (RSASSA-PKCS1-v1_5) and 3.5 (RSASSA-PSS, MGF1 with the same hash, salt as
# long as the hash). Padding and hash objects are stateless descriptions: built once.
_RSA: dict[str, tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]] = {
    **{f"RS{n}": (padding.PKCS1v15(), h) for n, h in _HASHES.items()},
    **{f"PS{n}": (padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
       for n, h in _HASHES.items()}}
# RFC 7518 3.4: ES256 uses P-256, ES384 P-384, ES512 P-521; r || s fixed-width big endian.
_EC: dict[str, tuple[str, int, ec.ECDSA]] = {
    "ES256": ("secp256r1", 32, ec.ECDSA(_HASHES["256"])),
    "ES384": ("secp384r1", 48, ec.ECDSA(_HASHES["384"])),
    "ES512": ("secp521r1", 66, ec.ECDSA(_HASHES["512"]))}
ASYMMETRIC_ALGORITHMS = frozenset({*_RSA, *_EC, "EdDSA"})
# Header parameters that point at or embed keys, or switch on JWE/unencoded payloads.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "enc", "zip", "b64"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_COMPACT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_MAX_KID_CHARS = 256
# Header segments remembered, and the longest remembered (real ones are ~100 characters;
# the bound keeps an attacker's long headers from pinning memory).
_HEADER_CACHE_SIZE = 256
_HEADER_CACHE_MAX_CHARS = 512


class ParsedToken(NamedTuple):
    """A structurally valid, *unverified* JWS. Nothing in it is trusted yet.

    A named tuple rather than a frozen dataclass: one is built per connect, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs several times more.
    """

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None
    typ: str | None


@dataclass(frozen=True, slots=True)
class _Header:
    members: Mapping[str, Any]
    alg: str
    kid: str | None
    typ: str | None


def b64url_decode(part: str) -> bytes | None:
    """Strict unpadded base64url, or None."""
    if not _B64URL.match(part) or len(part) % 4 == 1:
        return None
    return _decode(part.encode("ascii"))


def _decode(part: bytes) -> bytes | None:
    # The caller has checked the base64url alphabet, so after translation strict mode
    # only has the length to refuse (one character more than a multiple of four).
    try:
        return binascii.a2b_base64(part.translate(_TO_STANDARD) + b"=" * (-len(part) % 4),
                                   strict_mode=True)
    except binascii.Error:
        return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


# One decoder for all calls: json.loads(object_pairs_hook=...) builds a new one each time.
_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse(token: str, *, max_bytes: int) -> ParsedToken | Deny:
    """Split, decode and header-check a compact JWS. Signature and claims are not checked."""
    if len(token) > max_bytes:
        return Deny(DenyReason.TOKEN_TOO_LARGE, f"token of {len(token)} bytes > {max_bytes}")
    if not token.isascii():
        return Deny(DenyReason.TOKEN_MALFORMED, "token is not ASCII")
    raw = token.encode("ascii")
    parts = raw.split(b".")
    if len(parts) != 3:
        return Deny(DenyReason.TOKEN_MALFORMED, f"{len(parts)} dot-separated parts, want 3")
    if raw.translate(None, _COMPACT_ALPHABET):
        return Deny(DenyReason.TOKEN_MALFORMED, "a part is not unpadded base64url")
    header = _remembered_header(parts[0]) if len(parts[0]) <= _HEADER_CACHE_MAX_CHARS \
        else _read_header(parts[0])
    if isinstance(header, Deny) and header.reason is DenyReason.TOKEN_MALFORMED:
        return header
    claims, signature = _json_object(_decode(parts[1])), _decode(parts[2])
    if claims is None or signature is None:
        return Deny(DenyReason.TOKEN_MALFORMED, "payload or signature is not well formed")
    if isinstance(header, Deny):
        return header
    if not signature:
        return Deny(DenyReason.TOKEN_SIGNATURE_INVALID, "empty signature")
    return ParsedToken(header.members, claims, raw[:len(parts[0]) + 1 + len(parts[1])],
                       signature, header.alg, header.kid, header.typ)


def _read_header(segment: bytes) -> _Header | Deny:
    """The checked header of one segment; a pure function of it, so safe to remember."""
    header = _json_object(_decode(segment))
    if header is None:
        return Deny(DenyReason.TOKEN_MALFORMED, "header is not a base64url JSON object")
    if not FORBIDDEN_HEADERS.isdisjoint(header):
        forbidden = sorted(FORBIDDEN_HEADERS.intersection(header))
        return Deny(DenyReason.TOKEN_HEADER_FORBIDDEN, f"header carries {forbidden}")
    if "crit" in header:
        return Deny(DenyReason.TOKEN_CRIT_UNSUPPORTED, "no crit extension is supported")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        shown = alg if isinstance(alg, str) and len(alg) <= 16 else type(alg).__name__
        return Deny(DenyReason.TOKEN_ALG_NOT_ALLOWED, f"alg {shown!r} is not asymmetric")
    kid, typ = header.get("kid"), header.get("typ")
    if (kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID_CHARS)) or (
            typ is not None and not isinstance(typ, str)):
        return Deny(DenyReason.TOKEN_MALFORMED, "kid or typ is not a short string")
    return _Header(members=MappingProxyType(header), alg=alg, kid=kid, typ=typ)


_remembered_header = functools.lru_cache(maxsize=_HEADER_CACHE_SIZE)(_read_header)


def key_fits(alg: str, key: PublicKey) -> bool:
    """Whether ``key`` is of the type and curve that ``alg`` requires (RFC 7518 3.1)."""
    if alg in _RSA:
        return isinstance(key, rsa.RSAPublicKey)
    if alg in _EC:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == _EC[alg][0]
    return alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey)


def signature_valid(token: ParsedToken, key: PublicKey) -> bool:
    """Verify the token's signature with ``key`` under the token's (already allowed) alg."""
    alg, data, sig = token.alg, token.signing_input, token.signature
    if not key_fits(alg, key):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad, digest = _RSA[alg]
            key.verify(sig, data, pad, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            _, width, ecdsa = _EC[alg]
            key.verify(_ecdsa_der(sig, width), data, ecdsa)
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
