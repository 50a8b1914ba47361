"""What particular identity providers' tokens mean: one module per provider, one seam.

``Profile`` is the seam (``base``); an issuer block selects one with ``provider:`` and the
composition root builds it. ``okta`` and ``auth0`` need no profile of their own: what they
add is the groups claim, which the OIDC verifier maps for any issuer (``groups_claim``).
"""

from authsvc.identity.providers.base import Profile, Shaped, string_list, strings
from authsvc.identity.providers.cloudflare import CloudflareAccess
from authsvc.identity.providers.entra import EntraId
from authsvc.identity.providers.github import GitHubActions
from authsvc.identity.providers.kubernetes import KubernetesServiceAccount

__all__ = [
    "CloudflareAccess",
    "EntraId",
    "GitHubActions",
    "KubernetesServiceAccount",
    "Profile",
    "Shaped",
    "string_list",
    "strings",
]
