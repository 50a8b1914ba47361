"""A bounded cache of verified bearer tokens, so a token seen again skips the signature.

Clients reconnect with the token they already hold (every reconnect of a nats-py client
sends the same CONNECT), and the signature check is most of what a verification costs:
about 30 us for RS256-2048 and 80-100 us for ES256 on a small host. Envoy's ``jwt_authn``
keeps such a cache (``jwt_cache_config``); this one is stricter about what a hit may skip:

* the key is the SHA-256 of the exact token; the token itself is never stored;
* an entry records the issuer, ``kid``, ``alg`` and fingerprint of the key that verified
  the signature; a hit is served only while that key is still in the issuer's current key
  set, so a key removed from the JWKS stops its tokens at the next refresh, as it would
  without the cache;
* an entry never outlives the token's ``exp``; at ``exp`` it is dropped and the token goes
  through full verification again, which applies the leeway and decides;
* ``nbf``/``iat`` are checked again on every hit against ``now`` with the leeway;
* least recently used entries are evicted beyond ``max_entries``; 0 disables the cache.

Only verified identities are stored: a refusal is never cached, so a token refused for a
missing key or a clock problem is judged afresh each time. Pure: no clock, no I/O; the
verifier looks up the issuer's keys and passes ``now``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

from authsvc.domain import Identity

DEFAULT_MAX_ENTRIES = 10_000


class VerifiedToken(NamedTuple):
    """What a hit returns, and what it must check again first (a named tuple: one is
    built per verified connect, and a frozen dataclass costs several times more to build).

    ``not_before`` is the later of ``nbf`` and ``iat`` (both are refused in the future),
    ``expires`` is ``exp``; both in seconds since the epoch. ``leeway`` is the issuer's.
    """

    identity: Identity
    issuer: str
    kid: str | None
    alg: str
    key_fingerprint: bytes
    expires: float
    not_before: float | None
    leeway: float

    def current(self, at: float) -> bool:
        """Whether the token's time claims still hold at ``at`` (seconds since the epoch)."""
        if at >= self.expires:
            return False
        return self.not_before is None or at + self.leeway >= self.not_before


def token_digest(token: str) -> bytes:
    """The cache key of a token: SHA-256 of its exact bytes."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class VerifiedTokenCache:
    """Verified tokens by digest, least recently used evicted first."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """False when ``max_entries`` is 0: nothing is ever stored."""
        return self._max > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, at: float) -> VerifiedToken | None:
        """The entry for ``digest`` if its time claims hold at ``at``; a stale one is dropped.

        The caller must still check that the entry's key is in the issuer's current keys.
        """
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if not entry.current(at):
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def put(self, digest: bytes, entry: VerifiedToken, at: float) -> None:
        """Remember a token verified at ``at``, evicting the least recently used beyond the
        bound. A token already past ``exp`` (accepted within the leeway) is not stored."""
        if not self._max or not entry.current(at):
            return
        self._entries[digest] = entry
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        """Forget one token (its key is gone, or it no longer verifies)."""
        self._entries.pop(digest, None)
