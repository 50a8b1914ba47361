"""Who a connecting client proved to be."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

AttributeValue = str | int | bool | tuple[str, ...]


class IdentitySource(StrEnum):
    NKEY = "nkey"
    OIDC = "oidc"
    AWS_IAM = "aws_iam"


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified identity. Never carries the credential itself.

    ``principal`` is globally unique and stable (e.g. ``nkey:U...``, ``oidc:<iss>#<sub>``);
    ``subject`` is the source-local id that policies usually match.
    ``expires_at`` is when the proof stops being valid; minted JWTs never outlive it.
    """

    source: IdentitySource
    principal: str
    subject: str
    issuer: str = ""
    expires_at: datetime | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
