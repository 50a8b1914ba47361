"""``kind: PolicyTest`` files: identities and connections with the decision they must get.

    apiVersion: authsvc/v1
    kind: PolicyTest
    policy: [../orders.yaml]          # paths relative to this file (files or directories)
    cases:
      - name: the writer role publishes new orders
        now: 2026-03-02T10:00:00Z     # optional; default 2026-01-05T12:00:00Z (a Monday)
        identity: {source: aws_iam, subject: AROA..., attributes: {arn: ..., account: ...},
                   expires_in: 1h}
        connection: {host: 10.0.0.5, type: STANDARD, user: "role:writer"}
        expect:
          decision: allow              # allow | deny
          reason: explicit_deny        # deny only
          account: APP                 # this and every key below: allow only
          rules: [lambda-orders]       # the determining rule ids, exact (allow or deny)
          ttl_at_most: 15m
          ttl_at_least: 1m
          can_publish: [orders.v2.created]
          cannot_publish: [orders.v2.deleted]
          can_subscribe: [...]
          cannot_subscribe: [...]
          can_receive: [...]
          cannot_receive: [...]

A key that cannot be checked against the expected decision is refused at load, where the file
names it, instead of being skipped when the case runs: ``reason`` with ``allow``, and
``account``, the TTL bounds or a subject list with ``deny`` (a deny has no grant).

Pure: parsing (models) and case -> (identity, request) construction. Running is in ``testing``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from authsvc.domain import (
    AttributeValue,
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    DenyReason,
    Identity,
    IdentitySource,
    ServerInfo,
)
from authsvc.policy.durations import parse_duration

DEFAULT_NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
_STRICT = ConfigDict(frozen=True, extra="forbid")
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Attribute = StrictStr | StrictInt | StrictBool | list[StrictStr]
# client_info (type, kind) as nats-server reports each connection type.
_CLIENT_KIND = {
    "STANDARD": ("nats", "Client"), "WEBSOCKET": ("websocket", "Client"),
    "MQTT": ("mqtt", "Client"), "LEAFNODE": ("", "Leafnode"),
}


_OIDC_LISTS = ("groups", "aud")


class CaseIdentity(BaseModel):
    """A verified identity as a verifier would hand it to the engine."""

    model_config = _STRICT
    source: IdentitySource
    subject: str
    issuer: str = ""
    principal: str = ""
    attributes: dict[str, Attribute] = {}
    expires_in: Duration | None = None

    def build(self, now: datetime) -> Identity:
        """The domain ``Identity``; ``principal`` defaults to what the verifier would make
        (see :meth:`default_principal`)."""
        attributes: dict[str, AttributeValue] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in self.attributes.items()}
        if self.source is IdentitySource.OIDC:
            # The OIDC verifier always makes these lists, even from a lone string: a case
            # written {groups: admins} must be decided as the token would be.
            for key in _OIDC_LISTS:
                value = attributes.get(key)
                if isinstance(value, str):
                    attributes[key] = (value,)
        return Identity(source=self.source, subject=self.subject, issuer=self.issuer,
                        principal=self.principal or self.default_principal(),
                        attributes=attributes,
                        expires_at=now + self.expires_in if self.expires_in else None)


    def default_principal(self) -> str:
        """The principal the source's verifier gives this identity, so that a template on it
        (``{{principal.hash}}``) renders in a test as it will in production: ``nkey:<key>``,
        ``oidc:<issuer>#<subject>``, ``aws:<arn attribute>``; ``<source>:<subject>`` when the
        case lacks the issuer or ARN to say more."""
        arn = self.attributes.get("arn")
        if self.source is IdentitySource.OIDC and self.issuer:
            return f"oidc:{self.issuer}#{self.subject}"
        if self.source is IdentitySource.AWS_IAM and isinstance(arn, str):
            return f"aws:{arn}"
        return f"{self.source}:{self.subject}"


class CaseConnection(BaseModel):
    """The connect facts a policy can see."""

    model_config = _STRICT
    host: str = "127.0.0.1"
    type: Literal["STANDARD", "WEBSOCKET", "MQTT", "LEAFNODE"] = "STANDARD"
    user: str = ""

    def build(self, now: datetime) -> ConnectRequest:
        """A ``ConnectRequest`` as the request decoder would produce it."""
        kind_type, kind = _CLIENT_KIND[self.type]
        return ConnectRequest(
            server=ServerInfo(id="NPOLICYTEST"), user_nkey="UPOLICYTEST",
            client=ClientInfo(host=self.host, type=kind_type, kind=kind),
            connect=ConnectOptions(user=self.user), request_id="policy-test",
            issued_at=now, expires_at=now + timedelta(seconds=2))


Subjects = tuple[StrictStr, ...]
_T = TypeVar("_T")


def _at_least_one(value: tuple[_T, ...]) -> tuple[_T, ...]:
    # Not Field(min_length=1): on a tuple, pydantic also reports "at least 1 item" for a
    # list whose items failed, and that error sits first in the file, hiding the real one.
    if not value:
        raise PydanticCustomError("too_short", "needs at least one entry")
    return value


# Keys that describe a grant: only an allow has one.
_ALLOW_ONLY = ("account", "ttl_at_most", "ttl_at_least", "can_publish", "cannot_publish",
               "can_subscribe", "cannot_subscribe", "can_receive", "cannot_receive")


class Expect(BaseModel):
    """What the decision must be; every key given is checked."""

    model_config = _STRICT
    decision: Literal["allow", "deny"]
    reason: DenyReason | None = None
    account: str | None = None
    rules: tuple[str, ...] | None = None
    ttl_at_most: Duration | None = None
    ttl_at_least: Duration | None = None
    can_publish: Subjects = ()
    cannot_publish: Subjects = ()
    can_subscribe: Subjects = ()
    cannot_subscribe: Subjects = ()
    can_receive: Subjects = ()
    cannot_receive: Subjects = ()

    # ``decision`` is declared first, so it is in ``info.data`` here when it is valid; these
    # run only for keys the file gives, and the error points at that key's value.
    @field_validator(*_ALLOW_ONLY)
    @classmethod
    def _allow_only(cls, value: object, info: ValidationInfo) -> object:
        if info.data.get("decision") == "deny":
            raise PydanticCustomError(
                "expect_allow_only",
                "{key} describes a grant and is only checked for decision: allow; a deny has "
                "no grant", {"key": info.field_name})
        return value

    @field_validator("reason")
    @classmethod
    def _deny_only(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("decision") == "allow":
            raise PydanticCustomError(
                "expect_deny_only", "reason is only checked for decision: deny", {})
        return value


class Case(BaseModel):
    """One named expectation."""

    model_config = _STRICT
    name: Annotated[str, Field(min_length=1)]
    now: datetime = DEFAULT_NOW
    identity: CaseIdentity
    connection: CaseConnection = CaseConnection()
    expect: Expect


class PolicyTestFile(BaseModel):
    """A whole ``kind: PolicyTest`` document."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    api_version: Literal["authsvc/v1"] = Field(alias="apiVersion")
    kind: Literal["PolicyTest"]
    policy: Annotated[tuple[str, ...], AfterValidator(_at_least_one)]
    cases: Annotated[tuple[Case, ...], AfterValidator(_at_least_one)]
