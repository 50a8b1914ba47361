"""Build callout requests the way nats-server does, for unit, integration and bench code.

API
---

``FakeServer.create(name="test-server")``
    A server identity: ``signer`` (a ``Prefix.SERVER`` KeyPair, its public key is the server ID)
    and ``curve`` (the server's xkey pair). Attributes: ``id``, ``xkey``, ``name``.

``make_request_claims(server, *, now, user_nkey=None, callout_account="", sealed=False,
timeout=timedelta(seconds=2), client_info=None, connect_opts=None, client_tls=None) -> dict``
    The claims of one ``authorization_request`` as auth_callout.go fills them: ``aud`` is
    ``"nats-authorization-request"``, ``sub`` the callout account (a fresh account key when
    empty), ``iat = now`` and ``exp = now + timeout`` in whole seconds, ``nats`` in jwt v2
    struct order with ``server_id`` (``xkey`` only when ``sealed``), a fresh ``user_nkey`` when
    none is given, ``client_info`` defaults (``host``, ``id``, ``kind``, ``type``) updated by the
    given mapping, ``connect_opts`` likewise (``protocol`` always present), optional
    ``client_tls``. The result is a plain dict: tests may bend any member before signing.

``sign_request(claims, server, *, service_xkey=None) -> tuple[bytes, dict[str, str]]``
    Sign with ``server.signer`` (``iss`` is set to the server ID). With ``service_xkey`` (the
    service's public ``X...`` key) the token is sealed from ``server.curve`` and the
    ``Nats-Server-Xkey`` header is returned; otherwise the payload is the plaintext JWT and the
    headers are empty. Returns ``(payload, headers)`` ready for ``decode_request``.

``forge_request(claims, server, *, forger, service_xkey=None) -> tuple[bytes, dict[str, str]]``
    Like ``sign_request``, but the signature is ``forger``'s while ``iss`` still names
    ``server``: a forgery that only the signature check can catch. Sealed from
    ``server.curve`` like a real request, so it gets past the envelope.

``build_request(server, *, now, service_xkey=None, **claim_kwargs)``
    ``sign_request(make_request_claims(server, now=now, sealed=service_xkey is not None,
    **claim_kwargs), server, service_xkey=service_xkey)``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix
from authsvc.protocol.request import AUTH_REQUEST_AUDIENCE, AUTH_REQUEST_TYPE, SERVER_XKEY_HEADER
from authsvc.protocol.xkeys import CurveKeyPair

__all__ = ["FakeServer", "build_request", "forge_request", "make_request_claims", "sign_request"]


@dataclass(frozen=True)
class FakeServer:
    """The keys a nats-server creates at startup: a server nkey and an xkey."""

    signer: KeyPair
    curve: CurveKeyPair
    name: str = "test-server"

    @classmethod
    def create(cls, name: str = "test-server") -> FakeServer:
        return cls(KeyPair.create(Prefix.SERVER), CurveKeyPair.create(), name)

    @property
    def id(self) -> str:
        return self.signer.public_key

    @property
    def xkey(self) -> str:
        return self.curve.public_key


def make_request_claims(
    server: FakeServer,
    *,
    now: datetime,
    user_nkey: str | None = None,
    callout_account: str = "",
    sealed: bool = False,
    timeout: timedelta = timedelta(seconds=2),
    client_info: Mapping[str, Any] | None = None,
    connect_opts: Mapping[str, Any] | None = None,
    client_tls: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Request claims as nats-server v2.15 builds them (see module docstring)."""
    iat = int(now.timestamp())
    server_id: dict[str, Any] = {
        "name": server.name,
        "host": "127.0.0.1",
        "id": server.id,
        "version": "2.15.1",
    }
    if sealed:
        server_id["xkey"] = server.xkey
    nats: dict[str, Any] = {
        "server_id": server_id,
        "user_nkey": user_nkey or KeyPair.create(Prefix.USER).public_key,
        "client_info": {"host": "127.0.0.1", "id": 7, "kind": "Client", "type": "nats"}
        | dict(client_info or {}),
        "connect_opts": {"lang": "python3", "version": "2.16.0", "protocol": 1}
        | dict(connect_opts or {}),
    }
    if client_tls is not None:
        nats["client_tls"] = dict(client_tls)
    nats["type"] = AUTH_REQUEST_TYPE
    nats["version"] = 2
    return {
        "aud": AUTH_REQUEST_AUDIENCE,
        "exp": iat + int(timeout.total_seconds()),
        "iat": iat,
        "sub": callout_account or KeyPair.create(Prefix.ACCOUNT).public_key,
        "nats": nats,
    }


def sign_request(
    claims: Mapping[str, Any], server: FakeServer, *, service_xkey: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """Sign (and optionally seal) request claims; returns ``(payload, headers)``."""
    token = jwt.encode(claims, server.signer).encode("ascii")
    if service_xkey is None:
        return token, {}
    return server.curve.seal(token, service_xkey), {SERVER_XKEY_HEADER: server.xkey}


def forge_request(
    claims: Mapping[str, Any], server: FakeServer, *, forger: KeyPair,
    service_xkey: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """``claims`` in ``server``'s name, signed by ``forger``; returns ``(payload, headers)``."""
    head, body, _ = jwt.encode(claims, server.signer).split(".")
    signature = base64.urlsafe_b64encode(forger.sign(f"{head}.{body}".encode())).rstrip(b"=")
    token = f"{head}.{body}.".encode() + signature
    if service_xkey is None:
        return token, {}
    return server.curve.seal(token, service_xkey), {SERVER_XKEY_HEADER: server.xkey}


def build_request(
    server: FakeServer, *, now: datetime, service_xkey: str | None = None, **claim_kwargs: Any
) -> tuple[bytes, dict[str, str]]:
    """One-call request: claims from :func:`make_request_claims`, then :func:`sign_request`."""
    claims = make_request_claims(server, now=now, sealed=service_xkey is not None, **claim_kwargs)
    return sign_request(claims, server, service_xkey=service_xkey)
