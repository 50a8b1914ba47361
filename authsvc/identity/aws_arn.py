"""The caller ARN from STS ``GetCallerIdentity``, canonicalised to what policies bind. Pure.

An assumed-role session ``arn:aws:sts::ACCT:assumed-role/NAME/SESSION`` becomes the role ARN
``arn:aws:iam::ACCT:role/NAME``, as Consul (``responses/arn.go``) and aws-iam-authenticator
(``pkg/arn``) do. **The role path is lost**: the session ARN does not carry it, so a role
``role/service-role/orders`` (or an SSO role under ``/aws-reserved/sso.amazonaws.com/``)
canonicalises to ``role/orders``; policies must not bind paths of assumed roles. Recovering
it needs ``iam:GetRole`` with credentials of our own (Vault does that); we do not.

The session name is chosen by whoever assumed the role, so it is kept apart and never part
of the canonical ARN (AWS IAM User Guide, "IAM identifiers").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_NAME = r"[A-Za-z0-9_+=,.@-]"
_ARN = re.compile(r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>iam|sts)::"
                  r"(?P<account>[0-9]{12}):(?P<resource>[\x21-\x7e]{1,1024})")
_IAM_ENTITY = re.compile(rf"(?P<type>user|role)/(?:[\x21-\x7e]{{0,512}}/)?{_NAME}{{1,64}}")
_ASSUMED_ROLE = re.compile(rf"assumed-role/(?P<role>{_NAME}{{1,64}})/(?P<session>{_NAME}{{2,64}})")
_FEDERATED_USER = re.compile(rf"federated-user/{_NAME}{{2,32}}")


class ArnKind(StrEnum):
    """What kind of principal signed the proof."""

    USER = "user"
    ROLE = "role"
    FEDERATED_USER = "federated-user"
    ROOT = "root"


@dataclass(frozen=True, slots=True)
class CallerArn:
    """A canonical caller ARN, its account and kind, and the untrusted session name."""

    arn: str
    account: str
    kind: ArnKind
    session_name: str = ""


def canonical_arn(arn: str) -> CallerArn | None:
    """The canonical form of a GetCallerIdentity ARN, or None if it is not one we know."""
    match = _ARN.fullmatch(arn)
    if match is None:
        return None
    partition, service, account = match["partition"], match["service"], match["account"]
    resource = match["resource"]
    if service == "iam":
        if resource == "root":
            return CallerArn(arn=arn, account=account, kind=ArnKind.ROOT)
        entity = _IAM_ENTITY.fullmatch(resource)
        if entity is None:
            return None
        return CallerArn(arn=arn, account=account, kind=ArnKind(entity["type"]))
    if _FEDERATED_USER.fullmatch(resource):
        return CallerArn(arn=arn, account=account, kind=ArnKind.FEDERATED_USER)
    session = _ASSUMED_ROLE.fullmatch(resource)
    if session is None:
        return None
    return CallerArn(arn=f"arn:{partition}:iam::{account}:role/{session['role']}",
                     account=account, kind=ArnKind.ROLE, session_name=session["session"])


def unique_id(user_id: str, kind: ArnKind) -> str:
    """The stable part of ``UserId``: ``AROA...`` of ``AROA...:SESSION`` for role sessions.

    A role deleted and created again under the same name gets a new unique id, so a policy
    that binds ``subject:`` to it does not trust the new role (Vault ``resolve_aws_unique_ids``).
    """
    if kind is ArnKind.ROLE:
        return user_id.partition(":")[0]
    return user_id
