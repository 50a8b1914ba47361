"""The flat CSV view of audit records (one row per record) for spreadsheets and sampling.

Every row keeps ``seq``, ``event_id`` and ``record_hash``, so a sampled row can be matched
to the record in the chain. Cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or CR; OWASP "CSV injection") are prefixed with ``'``:
record values such as client names come from clients.
"""

from __future__ import annotations

from typing import Any

HEADER = ("time", "instance", "seq", "event_id", "type", "decision", "reason",
          "identity_source", "principal", "issuer", "account", "rule_ids", "policy_revision",
          "client_host", "client_name", "client_cid", "server_id", "server_name",
          "user_nkey", "jwt_jti", "jwt_exp", "latency_ms", "record_hash")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def row(record: dict[str, Any]) -> list[str]:
    identity = record.get("identity") or {}
    client = record.get("client") or {}
    server = record.get("server") or {}
    jwt = record.get("jwt") or {}
    values = (
        record.get("time"), record.get("instance"), record.get("seq"),
        record.get("event_id"), record.get("type"), record.get("decision"),
        record.get("reason"), identity.get("source"), identity.get("principal"),
        identity.get("issuer"), record.get("account"), ";".join(record.get("rule_ids") or []),
        record.get("policy_revision"), client.get("host"), client.get("name"),
        client.get("cid"), server.get("id"), server.get("name"), record.get("user_nkey"),
        jwt.get("jti"), jwt.get("exp"), record.get("latency_ms"), record.get("record_hash"))
    return [_cell(value) for value in values]
