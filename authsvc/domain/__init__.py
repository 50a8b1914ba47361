"""The shared vocabulary. Pure: no I/O, no imports from other authsvc packages."""

from authsvc.domain.decision import Allow, Decision, Deny, Grant
from authsvc.domain.identity import AttributeValue, Identity, IdentitySource
from authsvc.domain.permissions import (
    UNLIMITED,
    Limits,
    Permissions,
    ResponsePermission,
    SubjectPermission,
)
from authsvc.domain.reasons import DenyReason
from authsvc.domain.request import (
    ClientInfo,
    ClientTls,
    ConnectionType,
    ConnectOptions,
    ConnectRequest,
    ServerInfo,
)
from authsvc.domain.secret import Secret

__all__ = [
    "UNLIMITED",
    "Allow",
    "AttributeValue",
    "ClientInfo",
    "ClientTls",
    "ConnectOptions",
    "ConnectRequest",
    "ConnectionType",
    "Decision",
    "Deny",
    "DenyReason",
    "Grant",
    "Identity",
    "IdentitySource",
    "Limits",
    "Permissions",
    "ResponsePermission",
    "Secret",
    "ServerInfo",
    "SubjectPermission",
]
