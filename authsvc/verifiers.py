"""Composition of the identity sources from the ``identity`` settings section.

Part of the composition root: the only code that turns identity settings into plain
constructor arguments for ``authsvc.identity``.
"""

from __future__ import annotations

from dataclasses import replace

from authsvc.errors import ConfigError
from authsvc.identity import NkeyVerifier, Verifier, VerifierRegistry
from authsvc.identity.aws_iam import AwsIamVerifier
from authsvc.identity.aws_proof import ProofRules
from authsvc.identity.claims import ClaimRules, ClaimType, normalise_type
from authsvc.identity.fetch import HttpxGetter
from authsvc.identity.jwk import import_key_set
from authsvc.identity.jwks import CachePolicy, KeySource, RemoteKeys, StaticKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from authsvc.identity.sts import HttpxSts
from authsvc.settings_identity import (
    AwsIamSettings,
    IdentitySettings,
    OidcIssuerSettings,
    OidcSettings,
)


def build_verifiers(settings: IdentitySettings) -> VerifierRegistry:
    """The registry the service asks "who is this?"; token sources before nkey."""
    verifiers: list[Verifier] = []
    if settings.aws_iam is not None:  # its tokens carry a prefix: routed before JWT parsing
        verifiers.append(build_aws_iam(settings.aws_iam))
    if settings.oidc.issuers:
        verifiers.append(build_oidc(settings.oidc))
    if settings.nkey:
        verifiers.append(NkeyVerifier())
    if not verifiers:
        raise ConfigError("identity: no identity source is enabled")
    return VerifierRegistry(verifiers)


def build_oidc(settings: OidcSettings) -> OidcVerifier:
    """One verifier for all configured issuers, sharing one HTTP client."""
    jwks = settings.jwks
    getter = HttpxGetter(timeout=jwks.timeout, max_bytes=jwks.max_bytes)
    policy = CachePolicy(
        ttl=jwks.ttl.total_seconds(), min_ttl=jwks.min_ttl.total_seconds(),
        max_ttl=jwks.max_ttl.total_seconds(), cooldown=jwks.cooldown.total_seconds(),
        stale_for=jwks.stale_for.total_seconds(), max_keys=jwks.max_keys)
    issuers = [_issuer(item, getter, policy) for item in settings.issuers]
    return OidcVerifier(issuers, max_token_bytes=settings.max_token_bytes)


def _issuer(item: OidcIssuerSettings, getter: HttpxGetter, policy: CachePolicy) -> OidcIssuer:
    keys: KeySource
    if item.keys is not None:
        key_set = import_key_set(item.keys, min_rsa_bits=item.min_rsa_bits)
        if not len(key_set):
            raise ConfigError(f"identity.oidc issuer {item.issuer}: no usable static key "
                              f"(RSA keys need >= {item.min_rsa_bits} bits)")
        keys = StaticKeys(key_set)
    else:
        keys = RemoteKeys(issuer=item.issuer, getter=getter, jwks_uri=item.jwks_uri,
                          policy=replace(policy, min_rsa_bits=item.min_rsa_bits),
                          allow_http=item.allow_http)
    rules = ClaimRules(
        issuer=item.issuer, audiences=frozenset(item.audiences), leeway=item.leeway,
        max_lifetime=item.max_lifetime, required=tuple(item.required_claims),
        types=frozenset(normalise_type(t) for t in item.typ))
    return OidcIssuer(rules=rules, algorithms=frozenset(item.algorithms), keys=keys,
                      claims={name: ClaimType(kind) for name, kind in item.claims.items()},
                      mutable=frozenset(item.mutable_claims))


def build_aws_iam(settings: AwsIamSettings) -> AwsIamVerifier:
    """The AWS IAM verifier with its own STS HTTP client."""
    rules = ProofRules(
        server_id=settings.server_id, server_id_header=settings.server_id_header.lower(),
        nonce_header=settings.nonce_header.lower(), require_nonce=settings.require_nonce,
        max_age=settings.max_age, clock_skew=settings.clock_skew,
        regions=frozenset(settings.regions), endpoints=dict(settings.endpoints))
    return AwsIamVerifier(rules, HttpxSts(timeout=settings.timeout),
                          max_token_bytes=settings.max_token_bytes,
                          session_name=settings.session_name)
