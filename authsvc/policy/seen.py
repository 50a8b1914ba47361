"""Identities seen in the audit log, as subjects for ``policy diff``. Pure: the caller
reads the records (the CLI does, from audit files).

Decision records keep who connected (identity source, principal, subject, issuer) and how
(client host, type, kind); the identity is rebuilt from them as faithfully as they allow:

- ``aws_iam``: the principal is ``aws:`` + the canonical ARN the verifier made
  (``identity.aws_iam``), so its attributes ``arn``, ``account``, ``arn_kind`` and
  ``user_id`` (the subject) are rebuilt. ``session_name`` (kept only when the deployment
  enables it) is not recorded.
- ``oidc``: no claims or groups are recorded; every attribute is unknown.
- ``nkey``: the verifier sets no attributes; nothing is missing.

Nor is the CONNECT ``user`` recorded, through which a client asks for a role. What is
missing is the subject's ``gaps``, so ``diff`` names the rules that read it instead of
taking them as not matching. A record with a source this version does not know is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from authsvc.domain import (
    AttributeValue,
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    IdentitySource,
    ServerInfo,
)
from authsvc.policy.diff import Subject
from authsvc.policy.gaps import Gaps

# The canonical ARNs identity.aws_arn produces: iam user/role (assumed-role sessions become
# their role), iam root, sts federated-user; partition and account as STS names them.
_AWS_PRINCIPAL = re.compile(r"aws:(?P<arn>arn:(?:aws|aws-cn|aws-us-gov):(?P<service>iam|sts)::"
                            r"(?P<account>\d{12}):(?P<resource>[\x21-\x7e]+))")
_AWS_KINDS = (("iam", "user/", "user"), ("iam", "role/", "role"),
              ("sts", "federated-user/", "federated-user"))
# What identity.aws_iam sets on an identity; session_name only when enabled.
_SOURCES = frozenset(source.value for source in IdentitySource)
AWS_ATTRIBUTES = frozenset({"arn", "account", "user_id", "arn_kind", "session_name"})


def seen_identities(records: Iterable[Mapping[str, Any]], now: datetime) -> list[Subject]:
    """One subject per distinct identity (source, principal, subject, issuer) and connection
    (client host, type, kind) among the decision records in ``records``; other record types
    are skipped."""
    found: dict[tuple[str, ...], Subject] = {}
    for record in records:
        if record.get("type", "decision") != "decision":
            continue
        identity, client = record.get("identity"), record.get("client") or {}
        if not isinstance(identity, dict) or not identity.get("principal") \
                or identity.get("source", "nkey") not in _SOURCES:
            continue
        key = tuple(str(identity.get(name) or "") for name in
                    ("source", "principal", "subject", "issuer")) + tuple(
                        str(client.get(name) or "") for name in ("host", "type", "kind"))
        if key not in found:
            found[key] = _subject(identity, client, now)
    return [found[key] for key in sorted(found)]


def _subject(identity: dict[str, Any], client: dict[str, Any], now: datetime) -> Subject:
    principal, subject = str(identity["principal"]), str(identity.get("subject") or "")
    issuer = str(identity.get("issuer") or "")
    source = IdentitySource(identity.get("source", "nkey"))
    attributes, gaps = _attributes(source, principal, subject)
    who = Identity(source=source, principal=principal, subject=subject, issuer=issuer,
                   attributes=attributes)
    request = ConnectRequest(
        server=ServerInfo(id=""), user_nkey="",
        client=ClientInfo(host=str(client.get("host", "")), type=str(client.get("type", "")),
                          kind=str(client.get("kind", "")), name=str(client.get("name", ""))),
        connect=ConnectOptions(), request_id="", issued_at=now, expires_at=now)
    extra = ", ".join(value for value in (subject, issuer) if value and value not in principal)
    label = (f"{principal}{f' ({extra})' if extra else ''} via {client.get('type') or '?'} "
             f"from {client.get('host') or '?'}")
    return Subject(name=label, identity=who, request=request, now=now, gaps=gaps)


def _attributes(source: IdentitySource, principal: str,
                subject: str) -> tuple[dict[str, AttributeValue], Gaps]:
    """The attributes the record lets us rebuild, and what it leaves unknown."""
    if source is IdentitySource.OIDC:
        return {}, Gaps(attributes=None, requested_role=True)
    if source is IdentitySource.NKEY:
        return {}, Gaps(requested_role=True)
    arn = aws_attributes(principal, subject)
    if arn is None:
        return {}, Gaps(attributes=AWS_ATTRIBUTES, requested_role=True)
    return arn, Gaps(attributes=AWS_ATTRIBUTES - arn.keys(), requested_role=True)


def aws_attributes(principal: str, subject: str) -> dict[str, AttributeValue] | None:
    """``arn``, ``account``, ``arn_kind`` and ``user_id`` of an ``aws:<ARN>`` principal, as
    the aws_iam verifier set them; None when the principal is not a canonical ARN."""
    match = _AWS_PRINCIPAL.fullmatch(principal)
    if match is None:
        return None
    service, resource = match["service"], match["resource"]
    kind = "root" if (service, resource) == ("iam", "root") else next(
        (kind for svc, prefix, kind in _AWS_KINDS
         if svc == service and resource.startswith(prefix)), None)
    if kind is None:
        return None
    return {"arn": match["arn"], "account": match["account"], "user_id": subject,
            "arn_kind": kind}
