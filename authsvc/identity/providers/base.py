"""The provider seam of the OIDC verifier: what one IdP's tokens mean beyond the standard claims.

A profile runs after the signature and the claim rules (``claims.check_claims``) hold, on the
verified claims only. It returns the typed attributes the IdP's documented claims stand
for, optionally the subject to use instead of ``sub``, or a ``Deny`` when the token is not
shaped as that IdP documents it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from authsvc.domain import AttributeValue, Deny, DenyReason


@dataclass(frozen=True, slots=True)
class Shaped:
    """A profile's reading of a token: attributes to add, and the subject when not ``sub``."""

    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    subject: str | None = None


class Profile(Protocol):
    """One identity provider's token shape (GitHub Actions, Kubernetes, Entra ID, ...)."""

    name: str
    attribute_names: frozenset[str]  # every attribute it may set, so settings can refuse clashes

    def shape(self, claims: Mapping[str, Any]) -> Shaped | Deny:
        """Attributes (and maybe the subject) from verified claims, or a Deny."""
        ...


def strings(claims: Mapping[str, Any], names: Iterable[str]) -> dict[str, AttributeValue] | Deny:
    """Each present claim of ``names``, which must be a string, under its own name."""
    found: dict[str, AttributeValue] = {}
    for name in names:
        if name not in claims:
            continue
        value = claims[name]
        if not isinstance(value, str):
            return Deny(DenyReason.TOKEN_CLAIM_INVALID, f"claim {name!r} is not a string")
        found[name] = value
    return found


def string_list(value: object, name: str) -> tuple[str, ...] | Deny:
    """A claim that IdPs send as one string or a list of strings, as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return Deny(DenyReason.TOKEN_CLAIM_INVALID,
                    f"claim {name!r} is not a string or a list of strings")
    return tuple(items)
