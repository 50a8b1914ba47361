"""Composition of the identity sources from the ``identity`` settings section.

Part of the composition root: the only code that turns identity settings into plain
constructor arguments for ``authsvc.identity``.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import replace
from pathlib import Path

from authsvc.errors import ConfigError
from authsvc.identity import NkeyVerifier, Verifier, VerifierRegistry
from authsvc.identity.aws_iam import AwsIamVerifier
from authsvc.identity.aws_proof import ProofRules
from authsvc.identity.claims import ClaimRules, ClaimType, normalise_type
from authsvc.identity.fetch import HttpxGetter
from authsvc.identity.jwk import import_key_set
from authsvc.identity.jwks import CachePolicy, KeySource, RemoteKeys, StaticKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from authsvc.identity.providers import (
    CloudflareAccess,
    EntraId,
    GitHubActions,
    KubernetesServiceAccount,
    Profile,
)
from authsvc.identity.providers.cloudflare import certs_url
from authsvc.identity.providers.entra import parse_issuer as parse_entra_issuer
from authsvc.identity.sts import HttpxSts
from authsvc.settings_identity import (
    AwsIamSettings,
    IdentitySettings,
    OidcIssuerSettings,
    OidcSettings,
)

log = logging.getLogger("authsvc.verifiers")


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
    """One verifier for all configured issuers; one HTTP client per trust root (the
    system CAs, or an issuer's ca_file)."""
    jwks = settings.jwks
    getters: dict[Path | None, HttpxGetter] = {}  # one HTTP client per trust root

    def getter(ca_file: Path | None) -> HttpxGetter:
        if ca_file not in getters:
            getters[ca_file] = HttpxGetter(timeout=jwks.timeout, max_bytes=jwks.max_bytes,
                                           verify=_trust(ca_file))
        return getters[ca_file]

    policy = CachePolicy(
        ttl=jwks.ttl.total_seconds(), min_ttl=jwks.min_ttl.total_seconds(),
        max_ttl=jwks.max_ttl.total_seconds(), cooldown=jwks.cooldown.total_seconds(),
        stale_for=jwks.stale_for.total_seconds(), max_keys=jwks.max_keys)
    issuers = [issuer for item in settings.issuers
               for issuer in _issuers(item, getter(item.ca_file), policy)]
    return OidcVerifier(issuers, max_token_bytes=settings.max_token_bytes,
                        cache_size=settings.token_cache_size)


def _trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    """The TLS trust for an issuer's HTTPS fetches: its ``ca_file``, else the system's."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except OSError as exc:  # ssl.SSLError included: not PEM certificates
        raise ConfigError(f"identity.oidc issuer ca_file {ca_file}: cannot load CA "
                          f"certificates ({exc.strerror or exc})") from None


def _issuers(item: OidcIssuerSettings, getter: HttpxGetter,
             policy: CachePolicy) -> list[OidcIssuer]:
    """One routed issuer per exact ``iss`` of the block, sharing one key source."""
    names = item.exact_issuers
    keys = _keys(item, names[0], getter, policy)
    return [OidcIssuer(
        rules=ClaimRules(
            issuer=name, audiences=frozenset(item.audiences), leeway=item.leeway,
            max_lifetime=item.max_lifetime, required=tuple(item.required_claims),
            types=frozenset(normalise_type(t) for t in item.typ),
            empty_sub_allowed=item.provider == "cloudflare_access"),
        algorithms=frozenset(item.algorithms), keys=keys,
        claims={claim: ClaimType(kind) for claim, kind in item.claims.items()},
        mutable=frozenset(item.mutable_claims), profile=_profile(item, name),
        groups_claim=item.groups_attribute_claim, subject_claim=item.principal_claim)
        for name in names]


def _keys(item: OidcIssuerSettings, issuer: str, getter: HttpxGetter,
          policy: CachePolicy) -> KeySource:
    if item.keys is not None:
        key_set = import_key_set(item.keys, min_rsa_bits=item.min_rsa_bits)
        if not len(key_set):
            raise ConfigError(f"identity.oidc issuer {item.issuer}: no usable static key "
                              f"(RSA keys need >= {item.min_rsa_bits} bits)")
        return StaticKeys(key_set)
    jwks_uri = item.jwks_uri
    if jwks_uri is None and item.provider == "cloudflare_access":
        jwks_uri = certs_url(item.issuer)  # Access publishes no discovery for app tokens
    return RemoteKeys(issuer=issuer, getter=getter, jwks_uri=jwks_uri,
                      policy=replace(policy, min_rsa_bits=item.min_rsa_bits),
                      allow_http=item.allow_http)


def _profile(item: OidcIssuerSettings, issuer: str) -> Profile | None:
    """The provider profile for one exact issuer of the block."""
    if item.provider == "github":
        return GitHubActions()
    if item.provider == "kubernetes":
        return KubernetesServiceAccount()
    if item.provider == "cloudflare_access":
        return CloudflareAccess()
    if item.provider == "entra":
        parsed = parse_entra_issuer(issuer)
        if parsed is None:  # the settings model refuses these; never route one unchecked
            raise ConfigError(f"identity.oidc issuer {issuer}: not an Entra issuer")
        return EntraId(tenant=parsed[0], version=parsed[1],
                       groups_claim=item.groups_attribute_claim)
    return None  # generic, okta, auth0: standard claims plus groups_claim


def build_aws_iam(settings: AwsIamSettings) -> AwsIamVerifier:
    """The AWS IAM verifier with its own STS HTTP client."""
    if not settings.regions:
        log.warning("identity.aws_iam.regions is empty: a client without credentials can make "
                    "authsvc look up and connect to any region-shaped STS host it names; set "
                    "regions to where your workloads sign (docs/identity.md, Configuring)")
    rules = ProofRules(
        server_id=settings.server_id, server_id_header=settings.server_id_header.lower(),
        nonce_header=settings.nonce_header.lower(), require_nonce=settings.require_nonce,
        max_age=settings.max_age, clock_skew=settings.clock_skew,
        regions=frozenset(settings.regions), endpoints=dict(settings.endpoints))
    return AwsIamVerifier(rules, HttpxSts(timeout=settings.timeout),
                          max_token_bytes=settings.max_token_bytes,
                          session_name=settings.session_name,
                          federated_users=settings.federated_users)
