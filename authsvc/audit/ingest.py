"""nats-server's own rejections, as audit events. Pure: event JSON in, record fields out.

When a connect fails authorization, nats-server publishes a client-disconnect advisory on
``$SYS.ACCOUNT.CLIENT.AUTH.ERR`` in the callout account (server/auth_callout.go,
``sendAccountAuthErrorEvent``). It covers both our own error replies and the server's
refusal of a JWT we minted (e.g. one it finds invalid or already expired); the latter is
the evidence the service cannot see otherwise. Fields are copied by allow-list: the
advisory's client info can include the user JWT, which must never reach the log.

The client's ``user`` is not copied either. nats-server fills it from CONNECT ``user``, and
a leaf node whose remote URL carries only a token (``nats-leaf://TOKEN@hub``) sends that
token as both ``user`` and ``auth_token`` (nats-server 2.15.1 then reports the bearer token
as ``client.user``; tests/integration/test_edge_connections.py). The decision record names
the verified identity instead, and the join key is server id + client id.
"""

from __future__ import annotations

import json
from typing import Any

AUTH_ERROR_SUBJECT = "$SYS.ACCOUNT.CLIENT.AUTH.ERR"
AUTH_ERROR_TYPE = "nats.auth_error"

_SERVER_FIELDS = ("id", "name", "cluster", "ver", "host")
_CLIENT_FIELDS = ("id", "host", "acc", "name", "lang", "ver", "kind",
                  "client_type", "start", "stop", "issuer_key", "name_tag")
_MAX_TEXT = 512


def _pick(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    picked: dict[str, Any] = {}
    for name in names:
        value = source.get(name)
        if isinstance(value, str):
            picked[name] = value[:_MAX_TEXT]
        elif isinstance(value, int | float | bool):
            picked[name] = value
    return picked


def auth_error_fields(payload: bytes) -> dict[str, Any]:
    """The ``nats.auth_error`` record fields for one advisory (never raises)."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):
        return {"malformed": True, "size": len(payload)}
    if not isinstance(event, dict):
        return {"malformed": True, "size": len(payload)}
    client = _pick(event.get("client"), _CLIENT_FIELDS)
    return {
        "advisory": _pick(event, ("type", "id", "timestamp")),
        "nats_server": _pick(event.get("server"), _SERVER_FIELDS),
        "nats_client": client,
        "nats_reason": str(event.get("reason", ""))[:_MAX_TEXT],
    }
