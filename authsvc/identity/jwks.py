"""Where an issuer's verification keys come from: static keys, or a cached remote JWKS.

The remote cache (OpenID Connect Discovery 1.0, RFC 7517, HTTP caching RFC 9111):

* one fetch in flight per issuer; concurrent callers await the same task (go-oidc
  "inflight");
* fresh for ``max-age`` from Cache-Control, clamped to [min_ttl, max_ttl], else ``ttl``;
* an unknown ``kid`` triggers a refetch at most once per ``cooldown`` (measured: without
  one, 200 bogus kids cost 201 fetches; with it, 1). Inside the cooldown an unknown kid is
  refused at once, so a kid storm costs the IdP nothing and the client no wait;
* when a refresh fails the last good keys keep serving for ``stale_for``; only an issuer
  with no usable keys at all is a fault (``UpstreamError``);
* rotation needs no restart: a new kid is an unknown kid, which refetches.

HTTP lives in ``identity.fetch``; this module only decides when to fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from authsvc.domain import Deny, DenyReason
from authsvc.errors import UpstreamError
from authsvc.identity.fetch import JsonGetter, check_url
from authsvc.identity.jwk import KeySet, VerificationKey, import_key_set

log = logging.getLogger("authsvc.identity.jwks")

# A failed fetch with nothing cached is not retried for this long (seconds), so a dead
# IdP is not hammered by every connect; each of those connects still fails fast.
_EMPTY_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Timings (seconds) and caps for one issuer's remote JWKS."""

    ttl: float = 600.0
    min_ttl: float = 60.0
    max_ttl: float = 86_400.0
    cooldown: float = 30.0
    stale_for: float = 6 * 3600.0
    max_keys: int = 100
    min_rsa_bits: int = 2048


@dataclass(frozen=True, slots=True)
class KeyCacheStats:
    """One issuer's remote key cache, for metrics: fetch attempts that succeeded and that
    failed (discovery or JWKS), usable keys held, seconds since they were fetched (None
    before the first success), and whether they are being served past their freshness
    because refreshing failed (what to alert on: at ``stale_for`` they are dropped and
    every token of the issuer is refused)."""

    issuer: str
    fetched: int
    failed: int
    keys: int
    age: float | None
    stale: bool


class KeySource(Protocol):
    """Keys for one issuer, by kid."""

    async def lookup(self, kid: str | None) -> tuple[VerificationKey, ...] | Deny:
        """Candidate keys for ``kid``, or a Deny; raises UpstreamError with no keys at all."""
        ...


def _lookup(keys: KeySet, kid: str | None) -> tuple[VerificationKey, ...] | Deny | None:
    found = keys.candidates(kid)
    if found:
        return found
    if kid is not None and kid in keys.weak:
        return Deny(DenyReason.KEY_TOO_WEAK, keys.weak[kid])
    return None


class StaticKeys:
    """Keys given in the settings; never fetched."""

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    async def lookup(self, kid: str | None) -> tuple[VerificationKey, ...] | Deny:
        """Candidates from the configured set."""
        return _lookup(self._keys, kid) or Deny(DenyReason.TOKEN_KID_UNKNOWN, "kid not configured")


class RemoteKeys:
    """A JWKS fetched from ``jwks_uri`` or found by OIDC discovery on ``issuer``."""

    def __init__(self, *, issuer: str, getter: JsonGetter, jwks_uri: str | None = None,
                 policy: CachePolicy | None = None, allow_http: bool = False,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._issuer = issuer
        self._getter = getter
        self._configured_uri = jwks_uri
        self._jwks_uri = jwks_uri
        self._policy = policy or CachePolicy()
        self._allow_http = allow_http
        self._now = monotonic
        self._keys: KeySet | None = None
        self._fresh_until = 0.0
        self._stale_until = 0.0
        self._last_attempt = float("-inf")
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0  # JWKS documents requested (for tests and metrics)
        self._succeeded = 0
        self._failed = 0
        self._failing_since: float | None = None
        self._fetched_at: float | None = None

    async def lookup(self, kid: str | None) -> tuple[VerificationKey, ...] | Deny:
        """Candidates for ``kid``, refreshing when stale or (after the cooldown) unknown."""
        keys = await self._current()
        found = _lookup(keys, kid)
        if found is not None:
            return found
        if self._now() - self._last_attempt >= self._policy.cooldown:
            # A failed refetch leaves the cached keys authoritative: the kid is just unknown.
            with contextlib.suppress(UpstreamError):
                await self._refresh()
            found = _lookup(self._keys or keys, kid)
            if found is not None:
                return found
        return Deny(DenyReason.TOKEN_KID_UNKNOWN, "kid not in the issuer's JWKS")

    async def _current(self) -> KeySet:
        now = self._now()
        if self._keys is not None and now < self._fresh_until:
            return self._keys
        if self._keys is not None and now >= self._stale_until:
            self._keys = None  # past stale_for: the last good keys are no longer trusted
        if self._keys is not None and now - self._last_attempt < self._policy.cooldown:
            return self._keys  # a refresh failed recently: serve stale until the cooldown ends
        if self._keys is None and now - self._last_attempt < _EMPTY_RETRY_AFTER \
                and self._inflight is None:
            raise UpstreamError(f"no keys for issuer {self._issuer}; last fetch failed")
        try:
            await self._refresh()
        except UpstreamError:
            if self._keys is not None and now < self._stale_until:
                return self._keys
            raise
        assert self._keys is not None
        return self._keys

    async def _refresh(self) -> None:
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch())
            self._inflight.add_done_callback(self._clear_inflight)
        await asyncio.shield(self._inflight)

    def _clear_inflight(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost
        self._inflight = None

    def stats(self) -> KeyCacheStats:
        """What the cache holds now and how its fetches went (see ``KeyCacheStats``)."""
        now = self._now()
        held = self._keys is not None and now < self._stale_until
        return KeyCacheStats(
            issuer=self._issuer, fetched=self._succeeded, failed=self._failed,
            keys=len(self._keys) if held and self._keys is not None else 0,
            age=None if self._fetched_at is None else now - self._fetched_at,
            stale=held and now >= self._fresh_until and self._failing_since is not None)

    async def _fetch(self) -> None:
        self._last_attempt = self._now()
        try:
            await self._fetch_keys()
        except UpstreamError as exc:
            self._failed += 1
            self._note_failure(exc)
            raise
        if self._failing_since is not None:
            log.info("JWKS of %s fetched again after %.0f s of failures", self._issuer,
                     self._now() - self._failing_since)
            self._failing_since = None
        self._succeeded += 1

    def _note_failure(self, exc: UpstreamError) -> None:
        # Attempts are at most one per cooldown (one per second with no keys), so this says
        # it once per attempt, never per connect.
        now = self._now()
        if self._failing_since is None:
            self._failing_since = now
        if self._keys is not None and now < self._stale_until:
            log.warning("JWKS refresh of %s failed (%s); serving the keys fetched %.0f s ago "
                        "for %.0f s more (stale_for)", self._issuer, exc,
                        now - (self._fetched_at or now), self._stale_until - now)
        else:
            log.warning("JWKS of %s could not be fetched (%s); its tokens are refused "
                        "(upstream_unavailable)", self._issuer, exc)

    async def _fetch_keys(self) -> None:
        uri = self._jwks_uri or await self._discover()
        self.fetches += 1
        try:
            fetched = await self._getter.get_json(uri)
            keys = self._import(fetched.document)
        except UpstreamError:
            self._jwks_uri = self._configured_uri  # re-run discovery next time
            raise
        policy = self._policy
        ttl = policy.ttl if fetched.max_age is None else \
            min(max(fetched.max_age, policy.min_ttl), policy.max_ttl)
        now = self._now()
        self._keys, self._fresh_until, self._fetched_at = keys, now + ttl, now
        self._stale_until = now + ttl + policy.stale_for

    def _import(self, document: dict[str, object]) -> KeySet:
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise UpstreamError(f"JWKS of {self._issuer} has no keys array")
        if len(entries) > self._policy.max_keys:
            raise UpstreamError(f"JWKS of {self._issuer} has {len(entries)} keys > "
                                f"{self._policy.max_keys}")
        keys = import_key_set(entries, min_rsa_bits=self._policy.min_rsa_bits)
        if not len(keys) and not keys.weak:
            raise UpstreamError(f"JWKS of {self._issuer} has no usable signing key")
        return keys

    async def _discover(self) -> str:
        # OpenID Connect Discovery 1.0 section 4: issuer + "/.well-known/openid-configuration"
        # and 4.3: the document's issuer MUST equal the issuer it was fetched for.
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = (await self._getter.get_json(url)).document
        if document.get("issuer") != self._issuer:
            raise UpstreamError(f"discovery for {self._issuer} names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or check_url(uri, allow_http=self._allow_http):
            raise UpstreamError(f"discovery for {self._issuer} has no acceptable jwks_uri")
        self._jwks_uri = uri
        return uri
