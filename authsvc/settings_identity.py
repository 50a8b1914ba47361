"""The ``identity`` settings section: which identity sources run, and how strictly.

Read only by the composition root (``authsvc.verifiers``), like the rest of the settings::

    identity:
      nkey: true
      oidc:
        max_token_bytes: 8192
        jwks: {ttl: 10m, cooldown: 30s, stale_for: 6h, timeout: 1.5}
        token_cache_size: 10000          # verified tokens remembered; 0 = off
        issuers:
          - issuer: https://token.actions.githubusercontent.com
            provider: github             # maps repository, ref, environment, ... itself
            audiences: ["nats://prod"]
            algorithms: [RS256]
          - issuer: https://login.microsoftonline.com/{tenantid}/v2.0
            provider: entra
            tenants: [2f1c9a4e-8d7b-4e5f-9a3c-1b2d3e4f5a6b]   # one exact issuer each
            subject_claim: oid               # the default for entra
            audiences: [api://nats-prod]
      aws_iam:
        server_id: nats-prod
        regions: [eu-west-1]

Secure defaults: an audience is required, algorithms are asymmetric only, keys come over
https only (``allow_http`` is for loopback tests and local IdPs), lifetime is capped.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from authsvc.identity.aws_proof import sts_region
from authsvc.identity.fetch import check_url
from authsvc.identity.jws import ASYMMETRIC_ALGORITHMS
from authsvc.identity.providers import (
    CloudflareAccess,
    EntraId,
    GitHubActions,
    KubernetesServiceAccount,
    entra,
)
from authsvc.identity.token_cache import DEFAULT_MAX_ENTRIES as DEFAULT_TOKEN_CACHE_SIZE
from authsvc.policy.durations import MAX_DURATION, parse_duration

_POLICY_DURATION = re.compile(r"(?:\d+[dhms])+")


_SECONDS = re.compile(r"-?\d+(?:\.\d+)?")
_PYDANTIC_DURATION = re.compile(r"P[0-9YMWDTHS.,]+|-?(?:\d+:)?\d{1,2}:\d{2}(?:\.\d+)?")


def _duration(value: object) -> object:
    """Settings durations: the policy syntax (``12h``, ``1h30m``), a number of seconds (also
    as text, as environment variables are), or what pydantic reads (ISO 8601 ``PT12H``,
    ``HH:MM:SS``). Shared by every section; anything else gets one clear message."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    too_long = ValueError(f"{value!r} is longer than any duration setting allows")
    if _SECONDS.fullmatch(text):
        try:
            return timedelta(seconds=float(text))
        except OverflowError:
            raise too_long from None
    if _POLICY_DURATION.fullmatch(text):
        # parse_duration refuses zero (no policy duration may be 0); here the field's bounds
        # decide, so "0s" means what "0" means (off, where the field allows it).
        try:
            return timedelta(0) if set(text) <= set("0dhms") else parse_duration(text)
        except OverflowError:
            raise too_long from None
    if _PYDANTIC_DURATION.fullmatch(text):
        return text
    raise ValueError(f"{value!r} is not a duration; use e.g. 90s, 15m, 12h, 1h30m, 7d, "
                     "a number of seconds or HH:MM:SS")


# No duration setting means anything below zero: a negative cooldown, TTL or window would
# silently turn a limit off. Fields that must be positive say gt=0 as well. The ceiling is the
# policy durations' (10 years): far below what JetStream's int64 nanoseconds and datetime
# arithmetic can hold.
Duration = Annotated[timedelta, BeforeValidator(_duration), Ge(timedelta(0)), Le(MAX_DURATION)]
Provider = Literal["generic", "github", "kubernetes", "cloudflare_access", "entra", "okta",
                   "auth0"]
PROFILE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "github": GitHubActions.attribute_names,
    "kubernetes": KubernetesServiceAccount.attribute_names,
    "cloudflare_access": CloudflareAccess.attribute_names,
    "entra": EntraId.attribute_names,
}
DEFAULT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                      "EdDSA"]
# Claims IdPs let users or admins rename: never an identifier (Entra "nOAuth", GitHub renames).
DEFAULT_MUTABLE = ["email", "preferred_username", "name", "groups", "upn", "repository",
                   "repository_owner", "actor", "environment"]


class _Section(BaseModel):
    # allow_inf_nan: "inf" would pass every gt/ge bound and mean "never" (or "forever").
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class JwksCacheSettings(_Section):
    """How remote JWKS documents are cached (RFC 9111 caching, bounded)."""

    ttl: Duration = Field(timedelta(minutes=10), gt=timedelta(0), description="freshness "
                          "when the IdP sends no Cache-Control max-age")
    min_ttl: Duration = Field(timedelta(seconds=60), description="lower clamp on max-age")
    max_ttl: Duration = Field(timedelta(hours=24), gt=timedelta(0),
                              validate_default=True,  # checked against min_ttl
                              description="upper clamp on max-age; at least min_ttl")
    # The cooldown is what bounds refetches (jwks.RemoteKeys): at 0, every token naming an
    # unknown kid costs the IdP a fetch (measured: 200 bogus kids, 201 fetches).
    cooldown: Duration = Field(timedelta(seconds=30), ge=timedelta(seconds=1),
                               description="at most one refetch per issuer in this window "
                               "when a token names an unknown kid (at least 1s)")
    stale_for: Duration = Field(timedelta(hours=6), description="serve the last good keys this "
                                "long past their TTL while the IdP is unreachable; 0 = never")
    timeout: float = Field(1.5, gt=0, le=10, description="total seconds for one HTTP fetch; "
                           "keep it under the callout timeout (2 s)")
    max_bytes: int = Field(64 * 1024, ge=1024, le=1 << 20, description="JWKS/discovery size cap")
    max_keys: int = Field(100, ge=1, le=1000, description="keys per JWKS document")

    @field_validator("max_ttl")
    @classmethod
    def _clamp_ordered(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        # A field validator, not a model one, so this is reported with the other field
        # errors; min_ttl is validated first (declared first), and absent when it failed.
        low = info.data.get("min_ttl")
        if low is not None and value < low:
            raise ValueError("must be at least min_ttl: max-age is clamped to [min_ttl, "
                             "max_ttl], which would ignore min_ttl")
        return value


class OidcIssuerSettings(_Section):
    """One trusted issuer. Tokens are routed here by an exact match of ``iss``."""

    issuer: str = Field(min_length=1, description="exact `iss` value, trailing slash and all")
    audiences: list[str] = Field(default_factory=list, description="accepted `aud` values "
                                 "(any one); required unless audience_required is false")
    audience_required: bool = Field(True, description="false: bind no audience, and refuse "
                                    "tokens that carry one")
    jwks_uri: str | None = Field(None, description="fetch keys here instead of discovery")
    keys: list[dict[str, Any]] | None = Field(None, description="static public JWKs; no fetch")
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS),
                                  min_length=1, description="allowed asymmetric algorithms")
    typ: list[str] = Field(default_factory=list, description="accepted header `typ` values "
                           "(e.g. at+jwt); empty = any")
    leeway: Duration = Field(timedelta(seconds=60), ge=timedelta(0), le=timedelta(minutes=5),
                             description="clock skew allowed on exp, nbf and iat")
    max_lifetime: Duration | None = Field(timedelta(hours=24), gt=timedelta(0),
                                          description="refuse tokens whose exp - iat is "
                                          "longer; null = no cap")
    required_claims: list[str] = Field(default_factory=lambda: ["iat"], description="claims "
                                       "that must be present (exp and sub always are)")
    claims: dict[str, Literal["string", "strings", "int", "bool"]] = Field(
        default_factory=dict, description="claims copied into the identity, with their type")
    mutable_claims: list[str] = Field(default_factory=lambda: list(DEFAULT_MUTABLE),
                                      description="claims flagged as user-changeable")
    allow_http: bool = Field(False, description="allow http:// issuer and key URLs (tests)")
    ca_file: Path | None = Field(None, description="CA certificates (PEM) that the issuer's "
                                 "discovery and JWKS HTTPS servers must chain to (a private "
                                 "CA, e.g. a self-hosted Kubernetes API server); default: the "
                                 "system's trusted CAs")
    min_rsa_bits: int = Field(2048, ge=2048, le=16384)
    provider: Provider = Field("generic", description="what this IdP's claims mean: github, "
                               "kubernetes, cloudflare_access, entra, okta, auth0 "
                               "(docs/identity.md#providers)")
    groups_claim: str | None = Field(None, min_length=1, max_length=256, description="claim "
                                     "(string or list of strings) copied into the groups "
                                     "attribute; default groups for okta and entra")
    subject_claim: str | None = Field(None, min_length=1, max_length=128, description="claim "
                                      "that is the subject and, with the issuer, the "
                                      "principal; default oid for entra, sub otherwise")
    tenants: list[str] = Field(default_factory=list, description="entra: allowed tenant ids; "
                               "an issuer with {tenantid} stands for one issuer per tenant")

    @property
    def groups_attribute_claim(self) -> str | None:
        """The claim mapped to ``groups``, after the provider's default."""
        if self.groups_claim is not None:
            return self.groups_claim
        return "groups" if self.provider in ("okta", "entra") else None

    @property
    def principal_claim(self) -> str:
        """The claim that is the subject, after the provider's default: Entra's ``oid`` is
        the object id across the tenant's apps (``sub`` is pairwise per app), and the issuer
        carries the tenant, so the principal is tid + oid."""
        if self.subject_claim is not None:
            return self.subject_claim
        return "oid" if self.provider == "entra" else "sub"

    @property
    def exact_issuers(self) -> list[str]:
        """The exact ``iss`` values this block routes (an Entra template, expanded)."""
        return entra.expand(self.issuer, self.tenants)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        # A field validator, so that it is reported with the block's other bad fields (the
        # checks below involve several fields and run only once every field is valid).
        bad = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if bad:
            raise ValueError(f"{bad} are not allowed; use asymmetric ones: "
                             f"{sorted(ASYMMETRIC_ALGORITHMS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.audience_required and not self.audiences:
            raise ValueError(f"issuer {self.issuer}: audiences is empty; name the audience "
                             "your tokens are minted for (or set audience_required: false)")
        if self.keys is not None and self.jwks_uri is not None:
            raise ValueError(f"issuer {self.issuer}: give keys or jwks_uri, not both")
        if self.keys is not None and self.ca_file is not None:
            raise ValueError(f"issuer {self.issuer}: ca_file is for fetched keys; static keys "
                             "are never fetched")
        for url in [self.jwks_uri] if self.jwks_uri else []:
            problem = check_url(url, allow_http=self.allow_http)
            if problem:
                raise ValueError(f"issuer {self.issuer}: jwks_uri {problem}")
        if self.keys is None and self.jwks_uri is None:
            problem = check_url(self.issuer, allow_http=self.allow_http)
            if problem:
                raise ValueError(f"issuer {self.issuer}: cannot run discovery: {problem}; "
                                 "give jwks_uri or keys")
        return self

    @model_validator(mode="after")
    def _provider_fits(self) -> Self:
        problem = _provider_problem(self) or _mapping_problem(self)
        if problem:
            raise ValueError(f"issuer {self.issuer}: {problem}")
        return self


def _provider_problem(item: OidcIssuerSettings) -> str | None:
    """Why the issuer block does not fit its provider, or None."""
    templated = entra.TENANT_PLACEHOLDER in item.issuer
    if item.provider != "entra":
        if templated or item.tenants:
            return "{tenantid} and tenants are for provider: entra"
        if item.provider == "auth0" and not item.issuer.endswith("/"):
            return "Auth0 issuers end with a slash (https://<tenant>.auth0.com/)"
        return None
    parsed = entra.parse_issuer(item.issuer)
    if parsed is None:
        return ("not an Entra issuer: https://sts.windows.net/<tid>/ (v1) or "
                "https://login.microsoftonline.com/<tid>/v2.0 (v2), <tid> or {tenantid}")
    bad = [t for t in item.tenants if not entra.TENANT_ID.match(t)]
    if bad:
        return f"tenants {bad} are not tenant ids (lower-case GUIDs)"
    if templated and not item.tenants:
        return "{tenantid} needs tenants: the tenant ids you accept"
    if not templated and item.tenants and parsed[0] not in item.tenants:
        return "the issuer's tenant is not in tenants"
    return None


def _mapping_problem(item: OidcIssuerSettings) -> str | None:
    """Why ``claims``/``subject_claim`` clash with the provider or trust a mutable claim."""
    if item.principal_claim in item.mutable_claims:
        return (f"subject_claim {item.principal_claim!r} is a mutable claim; use an "
                "immutable id (sub, oid)")
    taken = set(PROFILE_ATTRIBUTES.get(item.provider, ()))
    if item.groups_attribute_claim is not None:
        taken.add("groups")
    clash = sorted(taken.intersection(item.claims))
    if clash:
        return f"claims {clash} are already set by provider {item.provider} (or groups_claim)"
    return None


class OidcSettings(_Section):
    """OIDC/JWT bearer tokens sent as CONNECT auth_token or pass."""

    issuers: list[OidcIssuerSettings] = Field(default_factory=list)
    max_token_bytes: int = Field(8 * 1024, ge=1024, le=64 * 1024, description="refuse longer "
                                 "tokens before parsing; raise max_control_line to match")
    jwks: JwksCacheSettings = Field(default_factory=JwksCacheSettings)
    token_cache_size: int = Field(
        DEFAULT_TOKEN_CACHE_SIZE, ge=0, le=1_000_000, description="verified tokens "
        "remembered (by SHA-256, never the token) so a token sent again skips the signature "
        "check until its exp, while its key stays in the JWKS; least recently used evicted "
        "first; 0 = off")

    @property
    def exact_issuers(self) -> tuple[str, ...]:
        """Every exact ``iss`` the issuer blocks route (Entra templates expanded)."""
        return tuple(name for issuer in self.issuers for name in issuer.exact_issuers)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = list(self.exact_issuers)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"issuers listed twice: {duplicates}")
        return self


class AwsIamSettings(_Section):
    """AWS IAM: signed STS GetCallerIdentity requests sent as ``aws-sts-v1.`` tokens.

    Checks that involve one field (or one field and those declared before it) are field
    validators, so that a bad ``regions`` is reported together with every other bad field
    rather than only once those are fixed.
    """

    server_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@+=-]+$",
                           description="value the client signs into server_id_header; "
                           "binds proofs to this deployment (e.g. nats-prod)")
    server_id_header: str = Field("X-Authsvc-Server-Id", pattern=r"^[Xx]-[A-Za-z0-9-]{1,62}$")
    nonce_header: str = Field("X-Authsvc-Nonce", pattern=r"^[Xx]-[A-Za-z0-9-]{1,62}$",
                              validate_default=True,  # checked against server_id_header
                              description="signed header carrying the connection's nonce")
    require_nonce: bool = Field(False, description="refuse proofs not bound to the "
                                "connection nonce (clients must send a sig)")
    max_age: Duration = Field(timedelta(minutes=15), gt=timedelta(0),
                              le=timedelta(minutes=15), description="oldest X-Amz-Date")
    clock_skew: Duration = Field(timedelta(seconds=60), ge=timedelta(0),
                                 le=timedelta(minutes=5), description="X-Amz-Date ahead of us")
    regions: list[str] = Field(default_factory=list, description="allowed STS regions "
                               "(global endpoint = us-east-1); empty = any (set it in "
                               "production)")
    allow_http: bool = Field(False, description="allow http:// endpoint URLs (tests)")
    endpoints: dict[str, str] = Field(default_factory=dict, description="STS host -> URL to "
                                      "send its requests to (VPC endpoints, tests)")
    timeout: float = Field(1.5, gt=0, le=10, description="total seconds per STS call; keep "
                           "it under the callout timeout (2 s)")
    session_name: bool = Field(False, description="expose the caller-chosen role session "
                               "name as attribute session_name")
    federated_users: bool = Field(False, description="accept federated users "
                                  "(sts:GetFederationToken); their name is chosen by the IAM "
                                  "user that asked for the token, so off by default")
    max_token_bytes: int = Field(8 * 1024, ge=2048, le=64 * 1024)

    @field_validator("nonce_header")
    @classmethod
    def _headers_apart(cls, value: str, info: ValidationInfo) -> str:
        names = {str(info.data.get("server_id_header", "")).lower(), value.lower()}
        if len(names) != 2 or any(name.startswith("x-amz-") for name in names):
            raise ValueError("server_id_header and nonce_header must differ and not be x-amz-*")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if sts_region(f"sts.{r}.amazonaws.com") != r
               and sts_region(f"sts.{r}.amazonaws.com.cn") != r]
        if bad:
            raise ValueError(f"{bad} are not AWS region names")
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for host, url in value.items():
            if sts_region(host) is None:
                raise ValueError(f"{host!r} is not an STS host name")
            problem = check_url(url, allow_http=bool(info.data.get("allow_http")))
            if problem:
                raise ValueError(f"{host}: {problem}")
        return value


class IdentitySettings(_Section):
    """Identity sources, tried in a fixed order: aws_iam, oidc (tokens), then nkey."""

    nkey: bool = Field(True, description="accept nkey proof of possession")
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    aws_iam: AwsIamSettings | None = Field(None, description="AWS IAM identities; off "
                                           "unless given")
