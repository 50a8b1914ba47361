"""Microsoft Entra ID (Azure AD) tokens: tenant-bound issuers, ``tid`` + ``oid``.

Source: learn.microsoft.com "ID token claims reference" and "Access token claims
reference".

* Two issuer forms: v1 ``https://sts.windows.net/<tid>/`` and v2
  ``https://login.microsoftonline.com/<tid>/v2.0``. An access token's version follows the
  *resource* app's manifest (``requestedAccessTokenVersion``), not the endpoint the client
  used, so configure the form your tokens carry (or both, as two issuer blocks). ``ver``
  (``1.0``/``2.0``), when present, must agree with the form.
* Multi-tenant apps: the discovery document's issuer is the template
  ``https://login.microsoftonline.com/{tenantid}/v2.0``. authsvc never matches a template
  at run time: it expands it at startup into one exact issuer per allowed tenant, so a
  token from any other tenant is ``issuer_unknown`` before a key is fetched. ``tid`` must
  equal the tenant of the issuer the token was routed to.
* ``oid`` is the user's or service principal's immutable object id across the tenant's
  apps (``sub`` is pairwise per app). It is the default ``subject_claim`` of an Entra
  issuer block, so the principal binds ``tid`` + ``oid`` (the issuer carries the tenant).
  Never ``email``, ``upn`` or ``preferred_username``: mutable and, for ``email``,
  unverified ("nOAuth").
* Groups: at most 200 object ids in a JWT; beyond that Entra sends an *overage* marker
  (``_claim_names.groups`` or ``hasgroups``) and no groups. When groups are mapped, such a
  token is refused rather than treated as "in no group", which would slip past deny rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from authsvc.domain import AttributeValue, Deny, DenyReason
from authsvc.identity.providers.base import Shaped, string_list, strings

TENANT_PLACEHOLDER = "{tenantid}"
TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISSUER = re.compile(r"^https?://[^/]+/(?P<tenant>[0-9a-f-]{36}|\{tenantid\})/(?P<v2>v2\.0/?)?$")
_STRING_CLAIMS = ("tid", "oid", "idtyp")


def parse_issuer(issuer: str) -> tuple[str, str] | None:
    """(tenant or ``{tenantid}``, ``1.0``/``2.0``) of an Entra issuer URL, or None."""
    match = _ISSUER.match(issuer)
    if match is None:
        return None
    tenant = match["tenant"]
    if tenant != TENANT_PLACEHOLDER and not TENANT_ID.match(tenant):
        return None
    if match["v2"] is None and not issuer.endswith("/"):
        return None
    return tenant, "2.0" if match["v2"] else "1.0"


def expand(issuer: str, tenants: Sequence[str]) -> list[str]:
    """The exact issuers a (possibly templated) issuer stands for."""
    if TENANT_PLACEHOLDER not in issuer:
        return [issuer]
    return [issuer.replace(TENANT_PLACEHOLDER, tenant) for tenant in tenants]


class EntraId:
    """Checks ``tid`` and ``ver`` against the issuer; maps tenant, object id, roles, app."""

    name = "entra"
    attribute_names = frozenset({*_STRING_CLAIMS, "roles", "app_id", "scopes"})

    def __init__(self, *, tenant: str, version: str, groups_claim: str | None) -> None:
        self._tenant = tenant
        self._version = version
        self._groups_claim = groups_claim

    def shape(self, claims: Mapping[str, Any]) -> Shaped | Deny:
        """Tenant-checked attributes; refuses a groups overage when groups are mapped."""
        refused = self._check(claims)
        if refused is not None:
            return refused
        found = strings(claims, _STRING_CLAIMS)
        if isinstance(found, Deny):
            return found
        attributes: dict[str, AttributeValue] = dict(found)
        if "roles" in claims:
            roles = string_list(claims["roles"], "roles")
            if isinstance(roles, Deny):
                return roles
            attributes["roles"] = roles
        app = claims.get("azp" if self._version == "2.0" else "appid")
        if isinstance(app, str):
            attributes["app_id"] = app
        if isinstance(claims.get("scp"), str):
            attributes["scopes"] = tuple(claims["scp"].split())
        return Shaped(attributes)

    def _check(self, claims: Mapping[str, Any]) -> Deny | None:
        tid = claims.get("tid")
        if tid is None:
            return Deny(DenyReason.TOKEN_CLAIM_MISSING, "tid is missing")
        if tid != self._tenant:
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, "tid is not the issuer's tenant")
        if "ver" in claims and claims["ver"] != self._version:
            return Deny(DenyReason.TOKEN_CLAIM_INVALID,
                        f"ver is not {self._version}, the issuer's token version")
        names = claims.get("_claim_names")
        overage = claims.get("hasgroups") is True or (
            isinstance(names, dict) and "groups" in names)
        if self._groups_claim is not None and overage:
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, "groups overage: the token lists no "
                        "groups; limit them in the app registration (ApplicationGroup)")
        return None
