"""The HTTP edge of the identity package: bounded GETs of JSON documents (JWKS, discovery).

httpx's async client, so no fetch ever blocks the event loop. Every call has a total
deadline (httpx timeouts are per operation, a slow-dripping server would outlive them),
follows no redirects (a redirect could move us off the configured origin), streams the
body against a byte cap and maps every foreign error to ``UpstreamError``.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from authsvc.errors import UpstreamError

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A JSON object and how long its server says it may be cached (seconds, or None)."""

    document: dict[str, object]
    max_age: float | None = None


class JsonGetter(Protocol):
    """Fetches one JSON object; raises UpstreamError on any failure."""

    async def get_json(self, url: str) -> Fetched:
        """GET ``url`` and return its JSON object body."""
        ...


def check_url(url: str, *, allow_http: bool = False) -> str | None:
    """Why ``url`` may not be fetched, or None. https only unless explicitly loosened."""
    parts = urlsplit(url)
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes or not parts.hostname:
        return f"{url!r} is not an {' or '.join(sorted(schemes))} URL"
    if parts.username or parts.password or parts.fragment:
        return f"{url!r} carries credentials or a fragment"
    return None


def cache_max_age(header: str | None) -> float | None:
    """Seconds from ``Cache-Control`` (RFC 9111 5.2.2.1); no-store/no-cache count as 0."""
    if not header:
        return None
    if _NO_CACHE.search(header):
        return 0.0
    match = _MAX_AGE.search(header)
    return float(match.group(1)) if match else None


class HttpxGetter:
    """JsonGetter over one shared ``httpx.AsyncClient``."""

    def __init__(self, *, timeout: float = 1.5, max_bytes: int = 64 * 1024,
                 client: httpx.AsyncClient | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        """``verify``: the TLS context server certificates must verify against (a private
        CA's); ``True`` is the system's trusted CAs."""
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, verify=verify,
            headers={"Accept": "application/json", "User-Agent": "authsvc"})

    async def get_json(self, url: str) -> Fetched:
        """GET with a total deadline and a body cap."""
        try:
            async with asyncio.timeout(self._timeout):
                body, cache_control = await self._get(url)
        except TimeoutError:
            raise UpstreamError(f"GET {url} timed out after {self._timeout}s") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"GET {url} failed: {type(exc).__name__}") from None
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the stack
            raise UpstreamError(f"GET {url}: body is not JSON") from None
        if not isinstance(document, dict):
            raise UpstreamError(f"GET {url}: body is not a JSON object")
        return Fetched(document=document, max_age=cache_max_age(cache_control))

    async def _get(self, url: str) -> tuple[bytes, str | None]:
        async with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                raise UpstreamError(f"GET {url} answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise UpstreamError(f"GET {url}: body over {self._max_bytes} bytes")
            return bytes(body), response.headers.get("cache-control")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
