"""GitHub Actions OIDC tokens (``iss`` https://token.actions.githubusercontent.com).

Source: docs.github.com "OpenID Connect reference" (claims).
Every custom claim GitHub documents is a JSON string, ids and counters included
(``"repository_id": "74"``, ``"run_attempt": "2"``), so they are mapped as strings and
compared as strings; ``ref_protected`` (``"true"``/``"false"``) becomes a bool.

``sub`` is ``repo:OWNER/REPO:`` followed by ``ref:refs/heads/BRANCH``, ``ref:refs/tags/TAG``,
``environment:NAME`` or ``pull_request`` (or an organisation's customised claim list); policies
bind it with ``subject:`` or a segment-aware ``subject_glob:``. Names (repository, owner,
actor, environment) can be renamed or re-registered: the ``*_id`` claims cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authsvc.domain import AttributeValue, Deny, DenyReason
from authsvc.identity.providers.base import Shaped, strings

ISSUER = "https://token.actions.githubusercontent.com"

STRING_CLAIMS = (
    "repository", "repository_id", "repository_owner", "repository_owner_id",
    "repository_visibility", "ref", "ref_type", "environment", "job_workflow_ref",
    "job_workflow_sha", "workflow", "workflow_ref", "workflow_sha", "sha", "event_name",
    "runner_environment", "actor", "actor_id", "head_ref", "base_ref", "run_id",
    "run_number", "run_attempt", "enterprise", "enterprise_id",
)


class GitHubActions:
    """GitHub's documented job claims as string attributes; ``ref_protected`` as a bool."""

    name = "github"
    attribute_names = frozenset({*STRING_CLAIMS, "ref_protected"})

    def shape(self, claims: Mapping[str, Any]) -> Shaped | Deny:
        """The job's repository, ref, environment and workflow claims."""
        found = strings(claims, STRING_CLAIMS)
        if isinstance(found, Deny):
            return found
        attributes: dict[str, AttributeValue] = dict(found)
        if "ref_protected" in claims:
            protected = _flag(claims["ref_protected"])
            if protected is None:
                return Deny(DenyReason.TOKEN_CLAIM_INVALID, "ref_protected is not true/false")
            attributes["ref_protected"] = protected
        return Shaped(attributes)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None
