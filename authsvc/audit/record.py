"""One audit record per decision as a JSON-ready mapping; chain.canonical gives its bytes.

Never holds a credential: identities are described by source/principal/issuer, tokens at most
by fingerprint. Field names are a stable contract for exports (see docs/audit.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from authsvc.domain import ClientTls, ConnectRequest, Grant, Identity

# 2: records are chained (seq, prev_hash, record_hash) and carry event_id and instance;
# ``type`` is no longer always "decision".
SCHEMA_VERSION = 2


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    """Everything known about one handled request when it is recorded."""

    time: datetime
    outcome: Outcome
    reason: str
    detail: str = ""
    request: ConnectRequest | None = None
    user_nkey: str = ""
    server_id: str = ""
    identity: Identity | None = None
    grant: Grant | None = None
    permissions: dict[str, Any] | None = None  # exactly as written into the minted JWT
    jwt_id: str = ""
    jwt_expires_at: datetime | None = None
    policy_revision: str = ""
    rule_ids: tuple[str, ...] = ()
    latency_ms: float = 0.0
    stages_ms: Mapping[str, float] | None = None  # decode, verify, policy, mint (ms each)
    supersedes: str = ""  # event_id of this request's allow record that did not become durable


def iso(at: datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-24T22:51:59.519Z``."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else None


def _request_fields(request: ConnectRequest) -> dict[str, Any]:
    c, o, s = request.client, request.connect, request.server
    return {
        "server": {"id": s.id, "name": s.name, "cluster": s.cluster, "version": s.version},
        "client": {
            "host": c.host, "cid": c.cid, "type": c.type, "kind": c.kind,
            "name": o.name or c.name, "lang": o.lang, "version": o.version,
        },
        "request_id": request.request_id,
        "sealed": request.sealed,
        **({"tls": _tls_fields(request.tls)} if request.tls is not None else {}),
    }


def _tls_fields(tls: ClientTls) -> dict[str, Any]:
    """TLS version, cipher and the SHA-256 fingerprint of the client's leaf certificate
    (the verified chain's first, else the first presented); never the certificate itself."""
    leaf = tls.verified_chains[0][0] if tls.verified_chains and tls.verified_chains[0] else \
        (tls.certs[0] if tls.certs else "")
    return {"version": tls.version, "cipher": tls.cipher,
            "fingerprint_sha256": pem_fingerprint(leaf) if leaf else ""}


def pem_fingerprint(pem: str) -> str:
    """SHA-256 (hex) of the DER bytes inside a PEM certificate; "" if it is not PEM."""
    body = "".join(line.strip() for line in pem.splitlines()
                   if line.strip() and not line.startswith("-----"))
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return hashlib.sha256(der).hexdigest() if der else ""


def _identity_fields(identity: Identity) -> dict[str, Any]:
    return {
        "source": identity.source.value,
        "principal": identity.principal,
        "subject": identity.subject,
        "issuer": identity.issuer,
        "expires_at": iso(identity.expires_at),
    }


def _grant_fields(grant: Grant, permissions: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "account": grant.account,
        "permissions": permissions,
        "limits": {"subs": grant.limits.subs, "data": grant.limits.data,
                   "payload": grant.limits.payload},
    }


def to_record(facts: DecisionFacts) -> dict[str, Any]:
    """The record as a JSON-ready mapping."""
    record: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "type": "decision",
        "time": iso(facts.time),
        "decision": facts.outcome.value,
        "reason": facts.reason,
        "user_nkey": facts.user_nkey or (facts.request.user_nkey if facts.request else ""),
        "server_id": facts.server_id or (facts.request.server.id if facts.request else ""),
        "policy_revision": facts.policy_revision,
        "rule_ids": list(facts.rule_ids),
        "latency_ms": round(facts.latency_ms, 3),
    }
    if facts.stages_ms:
        record["stages_ms"] = dict(facts.stages_ms)
    if facts.detail:
        record["detail"] = facts.detail
    if facts.request is not None:
        record.update(_request_fields(facts.request))
    if facts.identity is not None:
        record["identity"] = _identity_fields(facts.identity)
    if facts.grant is not None:
        record.update(_grant_fields(facts.grant, facts.permissions))
    if facts.jwt_id:
        record["jwt"] = {"jti": facts.jwt_id, "exp": iso(facts.jwt_expires_at)}
    if facts.supersedes:
        record["supersedes"] = facts.supersedes
    return record
