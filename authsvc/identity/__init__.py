"""Who is this? One module per identity source behind the ``Verifier`` protocol."""

from authsvc.identity.base import Verifier
from authsvc.identity.nkey import NkeyVerifier
from authsvc.identity.registry import VerifierRegistry

__all__ = ["NkeyVerifier", "Verifier", "VerifierRegistry"]
