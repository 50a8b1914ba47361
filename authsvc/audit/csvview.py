"""The flat CSV view of audit records (one row per record) for spreadsheets and sampling.

Every row keeps ``seq``, ``event_id`` and ``record_hash``, so a sampled row can be matched
to the record in the chain. ``supersedes`` is set on the error record that replaces an allow
whose record did not become durable (docs/audit.md): that allow was not granted. Cells that
a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR;
OWASP "CSV injection") are prefixed with ``'``: record values such as client names come
from clients. A member of the wrong type (``authsvc.audit.fields``) is an empty cell.
"""

from __future__ import annotations

from typing import Any

from authsvc.audit.fields import obj, text, texts

HEADER = ("time", "instance", "seq", "event_id", "type", "decision", "reason",
          "identity_source", "principal", "issuer", "account", "rule_ids", "policy_revision",
          "client_host", "client_name", "client_cid", "server_id", "server_name",
          "user_nkey", "jwt_jti", "jwt_exp", "latency_ms", "record_hash",
          "supersedes")  # added last: columns keep their positions for existing sheets
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    text_value = str(value)
    return "'" + text_value if text_value.startswith(_FORMULA) else text_value


def row(record: dict[str, Any]) -> list[str]:
    identity, client = obj(record, "identity"), obj(record, "client")
    server, jwt = obj(record, "server"), obj(record, "jwt")
    values = (
        text(record, "time"), text(record, "instance"), record.get("seq"),
        text(record, "event_id"), text(record, "type"), text(record, "decision"),
        text(record, "reason"), identity.get("source"), identity.get("principal"),
        identity.get("issuer"), text(record, "account"), ";".join(texts(record, "rule_ids")),
        text(record, "policy_revision"), client.get("host"), client.get("name"),
        client.get("cid"), server.get("id"), server.get("name"), text(record, "user_nkey"),
        jwt.get("jti"), jwt.get("exp"), record.get("latency_ms"), record.get("record_hash"),
        text(record, "supersedes"))
    return [_cell(value) for value in values]
