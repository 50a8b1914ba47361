"""The client side of OIDC for services that hold a client secret: OAuth2 client credentials.

A service registered at an IdP (Okta, Auth0, Entra ID, Keycloak, ...) with a client id and
secret gets an access token from the token endpoint (RFC 6749 4.4) and presents it to NATS
as its CONNECT token. With nats-py::

    from authsvc.clients.oidc import ClientCredentialsToken

    auth = ClientCredentialsToken(token_endpoint="https://idp.example.com/oauth2/token",
                                  client_id="orders", client_secret=os.environ["SECRET"],
                                  scope="nats")
    async with auth:                    # fetches the first token; keeps it fresh
        nc = await nats.connect(url, **auth.connect_options())

nats-py asks for the token with a *synchronous* callable at every CONNECT and reconnect, so
the helper cannot fetch there. It fetches ahead instead: a background task replaces the
token ``refresh_before`` seconds (at most a third of its lifetime) before it expires, and
retries with backoff, while the old token is still good, when the IdP does not answer.
``token()`` hands out the current token; it raises ``TokenUnavailable`` rather than hand
out an expired one. Concurrent ``refresh()`` calls share one request.

HTTP is authlib's ``AsyncOAuth2Client`` (httpx, async): no redirects, no proxy settings from
the environment, a total ``timeout``. The secret is sent only to the token endpoint, and
never appears in a repr, log line or exception raised here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import authlib.deprecate  # type: ignore[import-untyped]  # first: it sets its own filter
import httpx

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 fork and warns when it falls back to httpx, which is
    # what this package depends on; the fallback is authlib's supported path meanwhile.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
        OAuthError,
    )

log = logging.getLogger("authsvc.clients.oidc")

MAX_TOKEN_BYTES = 8 * 1024  # authsvc's default identity.oidc.max_token_bytes
_MAX_BACKOFF = 30.0


class TokenFetchError(RuntimeError):
    """The token endpoint refused the client or could not be reached."""


class TokenUnavailable(RuntimeError):
    """No unexpired token is at hand (the IdP has failed for longer than a token lives)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # on the helper's monotonic clock
    lifetime: float


class ClientCredentialsToken:
    """An access token from the client-credentials grant, cached and refreshed ahead."""

    def __init__(self, *, token_endpoint: str, client_id: str, client_secret: str,
                 scope: str | None = None, audience: str | None = None,
                 resource: str | None = None, auth_method: str = "client_secret_basic",
                 refresh_before: float = 60.0, default_lifetime: float = 300.0,
                 timeout: float = 5.0, max_token_bytes: int = MAX_TOKEN_BYTES,
                 transport: httpx.AsyncBaseTransport | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``audience`` (Auth0) and ``resource`` (RFC 8707) are sent when given."""
        self._endpoint = token_endpoint
        self._client_id = client_id
        self._client = AsyncOAuth2Client(
            client_id=client_id, client_secret=client_secret, scope=scope,
            token_endpoint_auth_method=auth_method, timeout=timeout, follow_redirects=False,
            trust_env=False, transport=transport)
        self._extra = {k: v for k, v in (("audience", audience), ("resource", resource)) if v}
        self._refresh_before = refresh_before
        self._default_lifetime = default_lifetime
        self._max_bytes = max_token_bytes
        self._timeout = timeout
        self._now = monotonic
        self._lock = asyncio.Lock()
        self._current: _Token | None = None
        self._generation = 0
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"ClientCredentialsToken({self._endpoint!r}, client_id={self._client_id!r})"

    def token(self) -> str:
        """The current access token, for nats-py's ``token=``; never an expired one."""
        current = self._current
        if current is None or self._now() >= current.expires_at:
            raise TokenUnavailable(f"no unexpired token from {self._endpoint}")
        return current.value

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``: a token asked for at every CONNECT."""
        return {"token": self.token}

    async def start(self) -> None:
        """Fetch the first token and start refreshing. Every failure to get a token (a
        refusal, no answer within ``timeout``, an answer that is not a token response)
        raises ``TokenFetchError``."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._keep_fresh(), name="oidc-token-refresh")

    async def get(self) -> str:
        """The current token, fetched first when it is due for a refresh."""
        current = self._current
        if current is None or self._now() >= self._due(current):
            return await self.refresh()
        return current.value

    async def refresh(self) -> str:
        """Fetch a new token now; callers that arrive during a fetch get its result."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation and self._current is not None:
                return self._current.value
            self._current = await self._fetch()
            self._generation += 1
            return self._current.value

    async def aclose(self) -> None:
        """Stop refreshing and close the HTTP client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    async def __aenter__(self) -> ClientCredentialsToken:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def _due(self, token: _Token) -> float:
        return token.expires_at - min(self._refresh_before, token.lifetime / 3)

    async def _keep_fresh(self) -> None:
        backoff = 1.0
        while True:
            current = self._current
            if current is not None:
                await asyncio.sleep(max(0.0, self._due(current) - self._now()))
            try:
                await self.refresh()
                backoff = 1.0
            except TokenFetchError as exc:  # _fetch turns every failure into this
                log.warning("%s; retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _fetch(self) -> _Token:
        started = self._now()
        try:
            async with asyncio.timeout(self._timeout):  # httpx's own timeout is per phase
                answer = await self._client.fetch_token(
                    self._endpoint, grant_type="client_credentials", **self._extra)
        except OAuthError as exc:
            raise TokenFetchError(f"{self._endpoint} refused client {self._client_id!r}: "
                                  f"{exc.error}") from None
        except TimeoutError:
            raise TokenFetchError(f"token request to {self._endpoint} timed out after "
                                  f"{self._timeout}s") from None
        except httpx.HTTPError as exc:
            raise TokenFetchError(f"token request to {self._endpoint} failed: "
                                  f"{type(exc).__name__}") from None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # A 200 whose body is not a token response (authlib's JSON parse): the same
            # kind of failure as a refusal, so the refresh loop retries instead of dying.
            raise TokenFetchError(f"{self._endpoint} answered with no token response "
                                  f"({type(exc).__name__})") from None
        if not isinstance(answer, dict):
            raise TokenFetchError(f"{self._endpoint} answered with no token response")
        value = answer.get("access_token")
        kind = str(answer.get("token_type", "Bearer"))
        if not isinstance(value, str) or not value or kind.lower() != "bearer":
            raise TokenFetchError(f"{self._endpoint} answered without a bearer access_token")
        if len(value) > self._max_bytes:
            raise TokenFetchError(f"access token of {len(value)} bytes > {self._max_bytes}; "
                                  "authsvc would refuse it (token_too_large)")
        lifetime = _lifetime(answer.get("expires_in"), value, self._default_lifetime)
        return _Token(value=value, expires_at=started + lifetime, lifetime=lifetime)


def _lifetime(expires_in: object, token: str, default: float) -> float:
    """Seconds the token lives: ``expires_in``, else its JWT ``exp``, else ``default``.

    The ``exp`` is read unverified, only to schedule the refresh; authsvc verifies it.
    """
    if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
        with contextlib.suppress(ValueError):
            return max(0.0, float(expires_in))
    parts = token.split(".")
    if len(parts) == 3:
        with contextlib.suppress(ValueError, TypeError, RecursionError):
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            exp = claims.get("exp") if isinstance(claims, dict) else None
            if isinstance(exp, int | float) and not isinstance(exp, bool):
                return max(0.0, exp - time.time())
    return default
