"""Grant -> signed NATS user JWT."""

from authsvc.minting.claims import Lifetime, permission_claims, user_claims
from authsvc.minting.signer import AccountKey, MintedJwt, Minter, Mode

__all__ = [
    "AccountKey",
    "Lifetime",
    "MintedJwt",
    "Minter",
    "Mode",
    "permission_claims",
    "user_claims",
]
