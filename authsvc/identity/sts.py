"""The STS edge: send the rebuilt ``GetCallerIdentity`` request, read the answer strictly.

``HttpxSts`` posts with httpx's async client (never blocking the event loop), a total
deadline, no redirects (aws-iam-authenticator and Vault follow none: a redirect could move
the proof to a host we did not choose), no proxy from the environment and a byte cap.
Transport failures, timeouts, throttling and 5xx are faults (``UpstreamError``: the service
denies with ``upstream_unavailable``); a host name that does not exist is the subclass
``StsHostUnknown``, so that the verifier can refuse a client-chosen one instead. A 4xx is
STS refusing the client's proof (``sts_signature_rejected``). A 200 must be exactly one
``GetCallerIdentityResult`` with one ``Arn``, ``Account`` and ``UserId`` in the 2011-06-15
namespace, else ``sts_response_invalid`` (the lenient parsing of CVE-2020-16250 is what
this guards).
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from typing import Protocol

import httpx

from authsvc.domain import Deny, DenyReason
from authsvc.errors import UpstreamError
from authsvc.identity import xmlstrict
from authsvc.identity.aws_proof import StsCall

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_XML_TYPES = frozenset({"text/xml", "application/xml"})
# STS answers 400 with these when it, not the client, is the problem (aws-iam-authenticator
# PR #630 maps throttling to 429).
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
_ACCOUNT = re.compile(r"[0-9]{12}")  # ASCII: \d is any Unicode digit
_USER_ID = re.compile(r"[A-Za-z0-9_+=,.@:-]{1,256}")
# getaddrinfo's "no such name" answers (NXDOMAIN, or a name without addresses). EAI_AGAIN
# (resolver unreachable, SERVFAIL) is not here: that stays an ordinary fault.
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None)


class StsHostUnknown(UpstreamError):
    """The STS URL's host name does not resolve (a fault unless the client chose the name)."""


@dataclass(frozen=True, slots=True)
class StsAnswer:
    """STS's HTTP answer, as received."""

    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Caller:
    """The three values of a GetCallerIdentityResult, checked for shape, not canonicalised."""

    arn: str
    account: str
    user_id: str


class StsPoster(Protocol):
    """Sends one rebuilt request; raises UpstreamError when STS cannot be asked."""

    async def post(self, call: StsCall) -> StsAnswer:
        """POST ``call`` and return the answer, whatever its status."""
        ...


class HttpxSts:
    """StsPoster over one shared ``httpx.AsyncClient``."""

    def __init__(self, *, timeout: float = 1.5, max_bytes: int = 16 * 1024,
                 client: httpx.AsyncClient | None = None) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False)

    async def post(self, call: StsCall) -> StsAnswer:
        """POST with a total deadline and a body cap."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._post(call)
        except TimeoutError:
            raise UpstreamError(f"STS {call.host} timed out after {self._timeout}s") from None
        except httpx.ConnectError as exc:
            if _name_not_found(exc):
                raise StsHostUnknown(f"STS {call.host}: host name does not resolve") from None
            raise UpstreamError(f"STS {call.host} failed: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"STS {call.host} failed: {type(exc).__name__}") from None

    async def _post(self, call: StsCall) -> StsAnswer:
        headers = [*call.headers, ("User-Agent", "authsvc"), ("Accept", "text/xml")]
        async with self._client.stream("POST", call.url, headers=headers,
                                       content=call.body) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise UpstreamError(f"STS {call.host}: answer over {self._max_bytes} bytes")
            content_type = response.headers.get("content-type", "")
            return StsAnswer(status=response.status_code, content_type=content_type,
                             body=bytes(body))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _name_not_found(exc: BaseException) -> bool:
    """Whether a connect error comes from getaddrinfo finding no such name. httpx chains
    ``httpx.ConnectError`` <- ``httpcore.ConnectError`` <- ``socket.gaierror``."""
    cause: BaseException | None = exc
    for _ in range(8):  # a bounded walk: chains can be long, never need to be followed far
        if cause is None:
            return False
        if isinstance(cause, socket.gaierror):
            return cause.errno in _NO_SUCH_NAME
        cause = cause.__cause__ or cause.__context__
    return False


def read_answer(answer: StsAnswer, host: str) -> Caller | Deny:
    """The caller STS vouched for, or a Deny; raises UpstreamError for STS-side faults."""
    if answer.status == 200:
        return _caller(answer)
    code = _error_code(answer.body)
    if answer.status == 429 or answer.status >= 500 or code in _THROTTLED:
        raise UpstreamError(f"STS {host} answered HTTP {answer.status} {code}".rstrip())
    if 400 <= answer.status < 500:
        return Deny(DenyReason.STS_SIGNATURE_REJECTED,
                    f"STS {host} refused the proof: HTTP {answer.status} {code}".rstrip())
    raise UpstreamError(f"STS {host} answered HTTP {answer.status}")


def _caller(answer: StsAnswer) -> Caller | Deny:
    media_type = answer.content_type.partition(";")[0].strip().lower()
    if media_type not in _XML_TYPES:
        return _invalid(f"content type {media_type[:40]!r}")
    try:
        root = xmlstrict.parse(answer.body)
    except xmlstrict.XmlRefused as exc:
        return _invalid(str(exc))
    if root.tag != "{" + STS_NAMESPACE + "}GetCallerIdentityResponse":
        return _invalid(f"root element {root.tag[:80]!r}")
    results = root.named("GetCallerIdentityResult")
    if len(results) != 1:
        return _invalid(f"{len(results)} GetCallerIdentityResult elements")
    if results[0].tag != "{" + STS_NAMESPACE + "}GetCallerIdentityResult":
        return _invalid(f"result element {results[0].tag[:80]!r}")
    values: dict[str, str] = {}
    for name in ("Arn", "Account", "UserId"):
        found = results[0].named(name)
        if len(found) != 1 or found[0].children or found[0].tag != \
                "{" + STS_NAMESPACE + "}" + name:
            return _invalid(f"{name} must appear exactly once, as text")
        values[name] = found[0].text
    return caller_of(values["Arn"], values["Account"], values["UserId"])


def caller_of(arn: str, account: str, user_id: str) -> Caller | Deny:
    """The three values of a GetCallerIdentityResult as a Caller, if each has its shape."""
    if not _ACCOUNT.fullmatch(account) or not _USER_ID.fullmatch(user_id):
        return _invalid("Account or UserId has an unexpected shape")
    return Caller(arn=arn, account=account, user_id=user_id)


def _error_code(body: bytes) -> str:
    """The ``Code`` of an STS error document, for the audit detail; "" if there is none."""
    try:
        root = xmlstrict.parse(body[:4096])
    except xmlstrict.XmlRefused:
        return ""
    errors = root.named("Error") or [e for w in root.named("Errors") for e in w.named("Error")]
    codes = [c.text for e in errors[:1] for c in e.named("Code")]
    return codes[0][:64] if codes and re.fullmatch(r"[A-Za-z.]{1,64}", codes[0]) else ""


def _invalid(detail: str) -> Deny:
    return Deny(DenyReason.STS_RESPONSE_INVALID, f"STS answer refused: {detail}")
