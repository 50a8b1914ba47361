"""Operator (decentralized) mode: operator and account JWTs, preloaded into a memory resolver.

Account JWTs carry explicit -1 limits: an account JWT without ``limits`` means ``conn: 0`` and
every callout-placed client fails (nats-io/jwt v2 ``OperatorLimits``; seen with nats-server
2.15). The callout account's
``authorization`` claim lists the service as ``auth_users``, the target accounts as
``allowed_accounts`` and our xkey. A bearer, deny-all ``default_sentinel`` in the callout
account lets clients connect without creds of their own; the callout decides where they go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authsvc.natsconf.keystore import SYSTEM_ACCOUNT
from authsvc.natsconf.render import (
    SERVICE_PUBLISH,
    SERVICE_SUBSCRIBE,
    Listener,
    ServerExtras,
    base_options,
)
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair

UNLIMITED_ACCOUNT = {
    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
    "wildcards": True, "conn": -1, "leaf": -1,
}
UNLIMITED_JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1,
                       "consumer": -1}
DENY_ALL = {"pub": {"allow": [], "deny": [">"]}, "sub": {"allow": [], "deny": [">"]}}


@dataclass(frozen=True)
class OperatorKeys:
    operator: KeyPair
    callout: KeyPair                 # the callout account's identity key (issuer.nk)
    service: KeyPair                 # the service's user nkey
    system: KeyPair
    targets: Mapping[str, tuple[KeyPair, KeyPair]]  # name -> (account key, signing key)


def _account_jwt(name: str, account: KeyPair, operator: KeyPair, now: datetime, *,
                 jetstream: bool, extra: Mapping[str, Any] | None = None) -> str:
    limits: dict[str, Any] = dict(UNLIMITED_ACCOUNT)
    if jetstream:
        limits.update(UNLIMITED_JETSTREAM)
    nats: dict[str, Any] = {"limits": limits, "type": "account", "version": 2}
    nats.update(extra or {})
    claims = {"sub": account.public_key, "name": name, "iat": int(now.timestamp()),
              "nats": nats}
    return jwt.encode(claims, operator)


def service_user_jwt(callout: KeyPair, service_public: str, now: datetime) -> str:
    """The service's own login in the callout account, least privilege."""
    claims = {
        "sub": service_public, "name": "authsvc", "iat": int(now.timestamp()),
        "nats": {"pub": {"allow": SERVICE_PUBLISH}, "sub": {"allow": SERVICE_SUBSCRIBE},
                 "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2},
    }
    return jwt.encode(claims, callout)


def sentinel_jwt(callout: KeyPair, sentinel: KeyPair, now: datetime) -> str:
    """A bearer, deny-all user in the callout account: gets clients to the callout only."""
    claims = {
        "sub": sentinel.public_key, "name": "sentinel", "iat": int(now.timestamp()),
        # Limits stay -1: nats-server 2.15 refuses every subscription of a placed user whose
        # sentinel has subs: 0 (nats-server#5002); other sentinel limits had no effect.
        "nats": {**DENY_ALL, "bearer_token": True, "subs": -1, "data": -1, "payload": -1,
                 "type": "user", "version": 2},
    }
    return jwt.encode(claims, callout)


def operator_mode(*, listener: Listener, extras: ServerExtras, auth_timeout: float,
                  keys: OperatorKeys, callout_account: str, xkey_public: str | None,
                  sentinel: KeyPair, now: datetime) -> dict[str, Any]:
    """The server config with every JWT it needs preloaded (MEMORY resolver)."""
    js = extras.jetstream_dir is not None
    authorization: dict[str, Any] = {
        "auth_users": [keys.service.public_key],
        "allowed_accounts": sorted(acct.public_key for acct, _ in keys.targets.values()),
    }
    if xkey_public:
        authorization["xkey"] = xkey_public
    preload = {
        keys.system.public_key: _account_jwt(SYSTEM_ACCOUNT, keys.system, keys.operator, now,
                                             jetstream=False),
        keys.callout.public_key: _account_jwt(callout_account, keys.callout, keys.operator,
                                              now, jetstream=js,  # the audit stream
                                              extra={"authorization": authorization}),
    }
    for name, (account, signing) in sorted(keys.targets.items()):
        preload[account.public_key] = _account_jwt(
            name, account, keys.operator, now, jetstream=js,
            extra={"signing_keys": [signing.public_key]})
    operator_claims = {
        "sub": keys.operator.public_key, "name": "authsvc", "iat": int(now.timestamp()),
        "nats": {"system_account": keys.system.public_key, "type": "operator", "version": 2},
    }
    body = base_options(listener, extras, auth_timeout=auth_timeout)
    body.update({
        "operator": jwt.encode(operator_claims, keys.operator),
        "system_account": keys.system.public_key,
        "resolver": "MEMORY",
        "resolver_preload": preload,
        "default_sentinel": sentinel_jwt(keys.callout, sentinel, now),
    })
    return body
