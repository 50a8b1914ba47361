"""OIDC / JWT bearer tokens: route by exact issuer, verify with that issuer's keys only.

The token arrives in CONNECT ``auth_token`` (nats-py ``token=``) or ``pass`` (``password=``):
in config mode nats-server drops the CONNECT ``jwt`` field before the callout. The order of
checks is the order of cost, so that nothing an attacker sends reaches the network unless
it names a configured issuer (Kubernetes structured authn routes the same way):

1. size cap, structure and header rules (``jws.parse``): no I/O;
2. the *unverified* ``iss`` picks exactly one configured issuer, by string equality
   (``https://idp`` never matches ``https://idp.evil``, pyjwt CVE-2024-53861);
3. the issuer's algorithm allow-list;
4. keys for the token's ``kid`` from that issuer's source (maybe a cached fetch);
5. the signature, then the claim rules.

A token verified before skips all of that while it is current and its key is still in the
issuer's key set (``token_cache``): reconnects resend the same token.

The identity is ``oidc:<iss>#<sub>`` because ``sub`` is unique only per issuer (or the
issuer's ``subject_claim``, or the subject its provider profile names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authsvc.domain import (
    AttributeValue,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    IdentitySource,
)
from authsvc.identity import jws
from authsvc.identity.claims import (
    ClaimRules,
    ClaimType,
    check_claims,
    convert,
    expiry,
    validity,
)
from authsvc.identity.jwks import KeyCacheStats, KeySource, RemoteKeys
from authsvc.identity.providers import Profile, string_list
from authsvc.identity.token_cache import (
    DEFAULT_MAX_ENTRIES,
    VerifiedToken,
    VerifiedTokenCache,
    token_digest,
)

DEFAULT_MAX_TOKEN_BYTES = 8 * 1024
GROUPS = "groups"  # the attribute policies read with ``match.groups``


@dataclass(frozen=True, slots=True)
class OidcIssuer:
    """One configured issuer: its claim rules, algorithms, key source and mapped claims.

    ``claims`` names the claims copied into ``Identity.attributes`` with their declared
    type; ``mutable`` lists those that the IdP lets users or admins change (email, group
    and repository names), recorded as the attribute ``mutable_claims`` so a policy author
    can tell them from immutable ids. ``profile`` reads what a particular IdP's claims mean
    (``identity.providers``); ``groups_claim`` names the claim (a string or a list of
    strings) copied into the attribute ``groups``; ``subject_claim`` the claim that is the
    subject and, with the issuer, the principal (Entra ``oid``; default ``sub``).
    """

    rules: ClaimRules
    algorithms: frozenset[str]
    keys: KeySource
    claims: Mapping[str, ClaimType] = field(default_factory=dict)
    mutable: frozenset[str] = frozenset()
    profile: Profile | None = None
    groups_claim: str | None = None
    subject_claim: str = "sub"


def bearer_token(request: ConnectRequest) -> str | None:
    """The token the client sent in ``auth_token``, else ``pass``; None when neither."""
    for secret in (request.connect.auth_token, request.connect.password):
        if secret:
            return secret.reveal()
    return None


class OidcVerifier:
    """Verifies JWTs from the configured issuers.

    ``cache_size`` bounds the verified-token cache (``token_cache``); 0 turns it off, and
    then every connect pays the full verification.
    """

    source = IdentitySource.OIDC

    def __init__(self, issuers: Sequence[OidcIssuer], *,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
                 cache_size: int = DEFAULT_MAX_ENTRIES) -> None:
        self._issuers = {issuer.rules.issuer: issuer for issuer in issuers}
        self._max_bytes = max_token_bytes
        self._cache = VerifiedTokenCache(cache_size)

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        """The identity the token proves, a Deny, or None when the client sent no token."""
        token = bearer_token(request)
        if token is None:
            return None
        if not self._cache.enabled or len(token) > self._max_bytes:
            result = await self._verify(token, now)
            return result if isinstance(result, Deny) else result.identity
        digest, at = token_digest(token), now.timestamp()
        hit = self._cache.get(digest, at)
        if hit is not None:
            if await self._key_current(hit):
                return hit.identity
            self._cache.discard(digest)  # its key left the JWKS: verify afresh, refuse there
        result = await self._verify(token, now)
        if isinstance(result, Deny):
            return result
        self._cache.put(digest, result, at)
        return result.identity

    def issuer(self, iss: str) -> OidcIssuer | None:
        """The configured issuer whose ``iss`` is exactly this, if any."""
        return self._issuers.get(iss)

    def key_caches(self) -> list[KeyCacheStats]:
        """The state of each issuer's remote JWKS cache (issuers with static keys have none)."""
        return [issuer.keys.stats() for issuer in self._issuers.values()
                if isinstance(issuer.keys, RemoteKeys)]

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens the cache holds now."""
        return len(self._cache)

    async def _verify(self, token: str, now: datetime) -> VerifiedToken | Deny:
        parsed = jws.parse(token, max_bytes=self._max_bytes)
        if isinstance(parsed, Deny):
            return parsed
        iss = parsed.claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            return Deny(DenyReason.ISSUER_UNKNOWN, f"iss {_shown(iss)} is not configured")
        if parsed.alg not in issuer.algorithms:
            return Deny(DenyReason.TOKEN_ALG_NOT_ALLOWED, f"{parsed.alg} not allowed for {iss}")
        keys = await issuer.keys.lookup(parsed.kid)  # UpstreamError: fault, fail closed
        if isinstance(keys, Deny):
            return keys
        for key in keys:
            if _accepts(key.alg, parsed.alg) and jws.signature_valid(parsed, key.key):
                break
        else:
            return Deny(DenyReason.TOKEN_SIGNATURE_INVALID, f"no key of {iss} verifies it")
        rules = issuer.rules
        refused = check_claims(parsed.claims, parsed.typ, rules, now)
        if refused is not None:
            return refused
        identity = claims_identity(parsed.claims, issuer)
        if isinstance(identity, Deny):
            return identity
        expires, not_before = validity(parsed.claims)
        return VerifiedToken(identity, rules.issuer, parsed.kid, parsed.alg, key.fingerprint,
                             expires, not_before, rules.leeway.total_seconds())

    async def _key_current(self, hit: VerifiedToken) -> bool:
        """Whether the key that verified a cached token is still one of its issuer's keys.

        The lookup is the one a fresh token would make: it refreshes a stale JWKS, so a key
        the IdP removed stops its cached tokens as soon as it would stop new ones.
        """
        keys = await self._issuers[hit.issuer].keys.lookup(hit.kid)
        return not isinstance(keys, Deny) and any(
            key.fingerprint == hit.key_fingerprint and _accepts(key.alg, hit.alg)
            for key in keys)


def _accepts(key_alg: str | None, token_alg: str) -> bool:
    # RFC 7517 4.4: a JWK that names its alg is used with that alg only.
    return key_alg is None or key_alg == token_alg


def _shown(value: object) -> str:
    return repr(value[:80]) if isinstance(value, str) else type(value).__name__


def claims_identity(claims: Mapping[str, Any], issuer: OidcIssuer) -> Identity | Deny:
    """The identity ``issuer``'s claims stand for: its declared claims with their types,
    groups, the provider profile's reading, subject and principal.

    Only for claims already verified (signature and claim rules), or, in ``policy explain
    --claims``, claims a person states to ask what the policy would decide.
    """
    attributes = _mapped(claims, issuer)
    if isinstance(attributes, Deny):
        return attributes
    subject = claims.get(issuer.subject_claim)
    if issuer.profile is not None:
        shaped = issuer.profile.shape(claims)
        if isinstance(shaped, Deny):
            return shaped
        attributes.update(shaped.attributes)
        subject = shaped.subject or subject
    if not isinstance(subject, str) or not subject:
        return Deny(DenyReason.TOKEN_CLAIM_MISSING,
                    f"{issuer.subject_claim} must be a non-empty string")
    if subject != claims["sub"]:
        attributes["sub"] = claims["sub"]
    mutable = sorted(issuer.mutable.intersection(attributes))
    if mutable:
        attributes["mutable_claims"] = tuple(mutable)
    iss = issuer.rules.issuer
    return Identity(source=IdentitySource.OIDC, principal=f"oidc:{iss}#{subject}",
                    subject=subject, issuer=iss, expires_at=expiry(claims),
                    attributes=attributes)


def _mapped(claims: Mapping[str, Any], issuer: OidcIssuer) -> dict[str, AttributeValue] | Deny:
    """The configured claims with their declared types, groups, ``aud`` and ``jti``."""
    attributes: dict[str, AttributeValue] = {}
    for name, kind in issuer.claims.items():
        if name not in claims:
            continue
        value = convert(claims[name], kind)
        if value is None:
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, f"claim {name!r} is not a {kind}")
        attributes[name] = value
    if issuer.groups_claim is not None and issuer.groups_claim in claims:
        groups = string_list(claims[issuer.groups_claim], issuer.groups_claim)
        if isinstance(groups, Deny):
            return groups
        attributes[GROUPS] = groups
    aud = claims.get("aud")
    if aud is not None:
        attributes["aud"] = (aud,) if isinstance(aud, str) else tuple(aud)
    if isinstance(claims.get("jti"), str):
        attributes["jti"] = claims["jti"]
    return attributes
