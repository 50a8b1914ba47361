"""The benchmark's only door to authsvc's key and JWT codec (:mod:`authsvc.protocol`).

The minimal responder must use the same codec as authsvc so the comparison measures the
service's extra work (verification, policy, audit), not a different JWT implementation.
"""

from __future__ import annotations

from pathlib import Path

from authsvc.protocol.jwt import encode as encode_jwt
from authsvc.protocol.nkeys import KeyPair, Prefix, create_seed, decode_seed
from authsvc.protocol.xkeys import CurveKeyPair

__all__ = [
    "CurveKeyPair",
    "KeyPair",
    "encode_jwt",
    "load_curve",
    "load_keypair",
    "new_user",
    "raw_seed",
    "write_config_mode_keys",
]


def load_keypair(path: Path) -> KeyPair:
    """Signing key pair from a seed file (``SA...``, ``SU...``)."""
    return KeyPair.from_seed(path.read_text().strip())


def load_curve(path: Path) -> CurveKeyPair:
    """Curve key pair from an ``SX...`` seed file."""
    return CurveKeyPair.from_seed(path.read_text().strip())


def new_user() -> KeyPair:
    """A fresh user nkey (the load generator's identity)."""
    return KeyPair.create(Prefix.USER)


def raw_seed(keypair: KeyPair) -> bytes:
    """The 32-byte ed25519 seed, so nonces can be signed without per-call decoding."""
    return decode_seed(keypair.seed)[1]


def write_config_mode_keys(keys_dir: Path) -> None:
    """The files ``authsvc keys init`` writes in config mode, for when it is unavailable."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for name, prefix in (
        ("issuer.nk", Prefix.ACCOUNT),
        ("service.nk", Prefix.USER),
        ("xkey.xk", Prefix.CURVE),
    ):
        path = keys_dir / name
        path.write_text(create_seed(prefix) + "\n")
        path.chmod(0o600)
