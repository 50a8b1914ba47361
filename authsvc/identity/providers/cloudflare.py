"""Cloudflare Access application tokens (the ``Cf-Access-Jwt-Assertion`` header's JWT).

Source: developers.cloudflare.com/cloudflare-one "Application token" and "Validating JSON".
``iss`` is the team domain ``https://<team>.cloudflareaccess.com``,
keys are RS256 at ``<team domain>/cdn-cgi/access/certs`` (a JWKS ``keys`` array beside PEM
``public_cert(s)``, which are ignored), ``aud`` is the Access application's AUD tag.

* ``type`` must be ``app``: an ``org`` token is the team-wide session cookie, not a grant
  for this application.
* A person's token carries ``sub`` (per-account user id), ``email`` (verified by the IdP)
  and ``country``. A **service token** login carries ``sub: ""`` and the service token's
  Client ID in ``common_name``: that Client ID becomes the subject, and
  ``cf_service_token`` is true, so a rule can tell machines from people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authsvc.domain import AttributeValue, Deny, DenyReason
from authsvc.identity.providers.base import Shaped, strings

CERTS_PATH = "/cdn-cgi/access/certs"
_STRING_CLAIMS = ("email", "country", "common_name", "identity_nonce")


def certs_url(team_domain: str) -> str:
    """Where a team's Access signing keys are published."""
    return team_domain.rstrip("/") + CERTS_PATH


class CloudflareAccess:
    """Application tokens only; service-token logins identified by their Client ID."""

    name = "cloudflare_access"
    attribute_names = frozenset({*_STRING_CLAIMS, "cf_service_token"})

    def shape(self, claims: Mapping[str, Any]) -> Shaped | Deny:
        """The user's or service token's identity, refusing org (session) tokens."""
        if claims.get("type") != "app":
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, "type is not app (org session token?)")
        found = strings(claims, _STRING_CLAIMS)
        if isinstance(found, Deny):
            return found
        attributes: dict[str, AttributeValue] = dict(found)
        if claims.get("sub"):
            attributes["cf_service_token"] = False
            return Shaped(attributes)
        client_id = attributes.get("common_name")
        if not isinstance(client_id, str) or not client_id:
            return Deny(DenyReason.TOKEN_CLAIM_MISSING, "neither sub nor common_name is set")
        attributes["cf_service_token"] = True
        return Shaped(attributes, subject=client_id)
