"""Tries each configured verifier in order; the first that recognises a credential decides.

Adding a source is one module plus one entry in the list the composition root builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from authsvc.domain import ConnectRequest, Deny, DenyReason, Identity
from authsvc.identity.base import Verifier
from authsvc.identity.jwks import KeyCacheStats
from authsvc.identity.oidc import OidcVerifier


class VerifierRegistry:
    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        self._verifiers = tuple(verifiers)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(v.source.value for v in self._verifiers)

    def key_caches(self) -> list[KeyCacheStats]:
        """Remote key caches of the verifiers that keep them (OIDC issuers fetched by URL)."""
        return [stats for verifier in self._verifiers if isinstance(verifier, OidcVerifier)
                for stats in verifier.key_caches()]

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny:
        """Identity of the client, or a Deny. Raises UpstreamError on provider faults."""
        for verifier in self._verifiers:
            result = await verifier.verify(request, now=now)
            if result is None:
                continue
            return expired(result, now, f"{verifier.source} proof expired") or result
        return Deny(DenyReason.NO_CREDENTIALS, "no credential recognised by: "
                    + ", ".join(self.sources))


def expired(result: Identity | Deny, now: datetime, detail: str) -> Deny | None:
    """The deny for an identity whose proof is no longer valid at ``now`` (a verifier may
    accept a token within its clock-skew leeway; no grant may start after its expiry)."""
    if isinstance(result, Identity) and result.expires_at and result.expires_at <= now:
        return Deny(DenyReason.IDENTITY_EXPIRED, detail)
    return None
