"""nats-server configuration for authsvc's deployment, derived from authsvc's own settings.

Both modes share these safety rules (nats-server ``server/auth.go`` and ``auth_callout.go``,
checked against nats-server 2.15 in tests/integration):
* ``max_control_line`` raised so large OIDC/IAM tokens fit (default 4 KB is too small);
* the service is the only user of the callout account and is listed in ``auth_users``;
* users are never placed in the callout account (the service refuses such grants, and
  nats-config refuses a policy that names it);
* config mode has an nkey user (the service), so the server sends a nonce and nkey
  clients can prove possession;
* the service may only subscribe to the callout subject and publish replies.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from authsvc.audit.stream import STREAM as AUDIT_STREAM
from authsvc.audit.stream import SUBJECTS as AUDIT_SUBJECTS

MAX_CONTROL_LINE = 32 * 1024
TLS_TIMEOUT = 2  # seconds for a client's TLS handshake (nats-server's default)

# The audit sink (docs/audit.md): publish records, create and inspect the audit stream,
# read it back with direct gets. Never STREAM.UPDATE, DELETE, PURGE or MSG.DELETE: the
# service cannot shorten, remove or rewrite its own audit log.
SERVICE_AUDIT_PUBLISH = [
    AUDIT_SUBJECTS, f"$JS.API.STREAM.INFO.{AUDIT_STREAM}",
    f"$JS.API.STREAM.CREATE.{AUDIT_STREAM}", f"$JS.API.DIRECT.GET.{AUDIT_STREAM}",
    f"$JS.API.DIRECT.GET.{AUDIT_STREAM}.>",
]
# Least privilege for the service identity in the callout account.
SERVICE_PUBLISH = ["$SYS._INBOX.>", "_INBOX.>", *SERVICE_AUDIT_PUBLISH]
SERVICE_SUBSCRIBE = ["$SYS.REQ.USER.AUTH", "$SYS.ACCOUNT.CLIENT.AUTH.ERR", "_INBOX.>"]


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Listener:
        parsed = urlparse(url)
        return cls(host=parsed.hostname or "127.0.0.1", port=parsed.port or 4222)

    def address(self, port: int) -> str:
        """``host:port`` as nats-server reads it, an IPv6 host in brackets."""
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    @property
    def loopback(self) -> bool:
        """Whether only this host can reach the listener (``localhost`` or a loopback IP)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to any interface
            return False


@dataclass(frozen=True, slots=True)
class ServerTls:
    """TLS on the client port: the server's certificate and key, and optionally the CA
    that client certificates must chain to (``verify``: every client must present one)."""

    cert_file: str
    key_file: str
    ca_file: str | None = None
    verify: bool = False


@dataclass(frozen=True, slots=True)
class ServerExtras:
    """Optional listeners the generated config adds."""

    server_name: str = "authsvc-nats"
    websocket_port: int | None = None
    monitor_port: int | None = None
    jetstream_dir: str | None = None
    tls: ServerTls | None = None


def render(body: Mapping[str, Any], *, header: str) -> str:
    """nats-server accepts JSON as configuration; comments may precede it."""
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + json.dumps(body, indent=2) + "\n"


def base_options(listener: Listener, extras: ServerExtras, *,
                 auth_timeout: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "server_name": extras.server_name,
        "listen": listener.address(listener.port),
        "max_control_line": MAX_CONTROL_LINE,
    }
    if extras.monitor_port is not None:
        body["http"] = listener.address(extras.monitor_port)
    if extras.websocket_port is not None:
        # Without TLS, on the client port's host: tokens cross it in plaintext, so keep that
        # host loopback (nats-config warns otherwise) and put a TLS proxy in front.
        body["websocket"] = {"host": listener.host, "port": extras.websocket_port,
                             "no_tls": True}
    if extras.jetstream_dir is not None:
        body["jetstream"] = {"store_dir": extras.jetstream_dir}
    if extras.tls is not None:
        tls: dict[str, Any] = {"cert_file": extras.tls.cert_file,
                               "key_file": extras.tls.key_file, "timeout": TLS_TIMEOUT}
        if extras.tls.ca_file is not None:
            tls["ca_file"] = extras.tls.ca_file
        if extras.tls.verify:
            tls["verify"] = True
        body["tls"] = tls
    body["authorization"] = {"timeout": auth_timeout}
    return body


def config_mode(*, listener: Listener, extras: ServerExtras, auth_timeout: float,
                issuer_public: str, service_public: str, callout_account: str,
                target_accounts: Sequence[str], xkey_public: str | None) -> dict[str, Any]:
    """Config (non-operator) mode: accounts and the auth_callout block in the server config."""
    body = base_options(listener, extras, auth_timeout=auth_timeout)
    service_user = {
        "nkey": service_public,
        "permissions": {"publish": {"allow": SERVICE_PUBLISH},
                        "subscribe": {"allow": SERVICE_SUBSCRIBE}},
    }
    accounts: dict[str, Any] = {callout_account: {"users": [service_user]}}
    if extras.jetstream_dir:
        accounts[callout_account]["jetstream"] = "enabled"  # holds the audit stream
    for name in target_accounts:
        accounts[name] = {"jetstream": "enabled"} if extras.jetstream_dir else {}
    body["accounts"] = accounts
    callout: dict[str, Any] = {
        "issuer": issuer_public,
        "account": callout_account,
        "auth_users": [service_public],
    }
    if xkey_public:
        callout["xkey"] = xkey_public
    body["authorization"]["auth_callout"] = callout
    return body
