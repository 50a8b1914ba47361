"""The decoded, validated authorization request nats-server sends for one connect.

Field meanings follow nats-io/jwt v2 ``AuthorizationRequestClaims``
(``authorization_claims.go``) and how nats-server fills them (``server/auth_callout.go``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from authsvc.domain.secret import Secret


class ConnectionType(StrEnum):
    """``client_info.type`` as nats-server reports it, normalised to the JWT spelling."""

    STANDARD = "STANDARD"
    WEBSOCKET = "WEBSOCKET"
    MQTT = "MQTT"
    LEAFNODE = "LEAFNODE"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    id: str
    name: str = ""
    host: str = ""
    version: str = ""
    cluster: str = ""
    tags: tuple[str, ...] = ()
    xkey: str = ""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    host: str = ""
    cid: int = 0
    user: str = ""
    name: str = ""
    kind: str = ""
    type: str = ""
    nonce: str = ""

    @property
    def connection_type(self) -> ConnectionType:
        """The transport, or ``UNKNOWN`` for an empty or unrecognised ``type``: a fact that
        cannot be read, never one to guess (policy conditions on it fail closed)."""
        if self.kind.lower() == "leafnode":
            return ConnectionType.LEAFNODE
        return {
            "nats": ConnectionType.STANDARD,
            "websocket": ConnectionType.WEBSOCKET,
            "mqtt": ConnectionType.MQTT,
        }.get(self.type.lower(), ConnectionType.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """The client's CONNECT fields. Credentials are ``Secret`` so they cannot leak by repr."""

    jwt: str = ""
    nkey: str = ""
    sig: str = ""
    auth_token: Secret | None = None
    user: str = ""
    password: Secret | None = None
    name: str = ""
    lang: str = ""
    version: str = ""
    protocol: int = 0


@dataclass(frozen=True, slots=True)
class ClientTls:
    version: str = ""
    cipher: str = ""
    certs: tuple[str, ...] = ()
    verified_chains: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """One validated ``authorization_request``: who is connecting, through which server."""

    server: ServerInfo
    user_nkey: str
    client: ClientInfo
    connect: ConnectOptions
    request_id: str
    issued_at: datetime
    expires_at: datetime
    sealed: bool = False
    tls: ClientTls | None = None
    raw_size: int = field(default=0, compare=False)
