"""Identities seen in the audit log, as subjects for ``policy diff``. Reads files.

Decision records keep who connected (identity source, principal, subject, issuer) and how
(client host, type, kind), never the token's claims; a rule that matches on claims or
groups therefore cannot match these identities under either policy, and the diff says
nothing about such rules for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    IdentitySource,
    ServerInfo,
)
from authsvc.errors import PolicyError
from authsvc.policy.diff import Subject


def seen_identities(paths: Sequence[Path], now: datetime) -> list[Subject]:
    """One subject per distinct (principal, client host, connection type) in ``paths``."""
    found: dict[tuple[str, str, str], Subject] = {}
    for record in _decisions(paths):
        identity, client = record.get("identity"), record.get("client") or {}
        if not isinstance(identity, dict) or not identity.get("principal"):
            continue
        key = (str(identity["principal"]), str(client.get("host", "")),
               str(client.get("type", "")))
        if key not in found:
            found[key] = _subject(identity, client, now)
    return [found[key] for key in sorted(found)]


def _decisions(paths: Sequence[Path]) -> Iterable[dict[str, Any]]:
    for path in paths:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise PolicyError(f"cannot read audit log: {exc.strerror}", file=str(path)) from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise PolicyError("not a JSON audit record", file=str(path),
                                  line=number) from None
            if isinstance(record, dict) and record.get("type", "decision") == "decision":
                yield record


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
