"""The verifier seam: one Protocol every identity source implements.

A verifier either proves who the client is (``Identity``), refuses with a typed ``Deny``, or
declines (``None``) when the request carries no credential of its kind, so the registry can
try the next source. Faults (IdP unreachable) are raised as ``UpstreamError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from authsvc.domain import ConnectRequest, Deny, Identity, IdentitySource


class Verifier(Protocol):
    """One identity source (nkey, oidc, aws_iam, ...)."""

    source: IdentitySource

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        """Return the verified identity, a denial, or None when the credential is not ours."""
        ...
