"""Identities seen in the audit log, as subjects for ``policy diff``. Pure: the caller
reads the records (the CLI does, from audit files).

Decision records keep who connected (identity source, principal, subject, issuer) and how
(client host, type, kind), never the token's claims; a rule that matches on claims or
groups therefore cannot match these identities under either policy, and the diff says
nothing about such rules for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    IdentitySource,
    ServerInfo,
)
from authsvc.policy.diff import Subject


def seen_identities(records: Iterable[Mapping[str, Any]], now: datetime) -> list[Subject]:
    """One subject per distinct (principal, client host, connection type) among the
    decision records in ``records``; other record types are skipped."""
    found: dict[tuple[str, str, str], Subject] = {}
    for record in records:
        if record.get("type", "decision") != "decision":
            continue
        identity, client = record.get("identity"), record.get("client") or {}
        if not isinstance(identity, dict) or not identity.get("principal"):
            continue
        key = (str(identity["principal"]), str(client.get("host", "")),
               str(client.get("type", "")))
        if key not in found:
            found[key] = _subject(identity, client, now)
    return [found[key] for key in sorted(found)]


def _subject(identity: dict[str, Any], client: dict[str, Any], now: datetime) -> Subject:
    principal = str(identity["principal"])
    who = Identity(source=IdentitySource(identity.get("source", "nkey")), principal=principal,
                   subject=str(identity.get("subject", "")),
                   issuer=str(identity.get("issuer") or ""))
    request = ConnectRequest(
        server=ServerInfo(id=""), user_nkey="",
        client=ClientInfo(host=str(client.get("host", "")), type=str(client.get("type", "")),
                          kind=str(client.get("kind", "")), name=str(client.get("name", ""))),
        connect=ConnectOptions(), request_id="", issued_at=now, expires_at=now)
    label = f"{principal} via {client.get('type') or '?'} from {client.get('host') or '?'}"
    return Subject(name=label, identity=who, request=request, now=now)
