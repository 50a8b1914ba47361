"""``github_unbound``: a GitHub Actions allow rule must name one repository, by a literal
``repo:OWNER/REPO`` in its subject or an equality on ``repository`` / ``repository_id``."""

from __future__ import annotations

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

GITHUB = "https://token.actions.githubusercontent.com"
GHEC = f"{GITHUB}/acme-enterprise"  # an enterprise's custom issuer on GitHub Enterprise Cloud
GHES = "https://github.acme.example/_services/token"  # a GitHub Enterprise Server instance


def codes(match: dict[str, object], effect: str = "allow") -> list[str]:
    rule: dict[str, object] = {"id": "ci", "effect": effect, "match": match}
    if effect == "allow":
        rule["grant"] = {"account": "CI", "publish": {"allow": ["ci.deploy"]}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text))]


@pytest.mark.parametrize("match", [
    {"source": "oidc", "issuer": GITHUB},
    {"issuer": GITHUB, "claims": {"repository_owner": {"equals": "acme"}}},
    {"issuer": GITHUB, "claims": {"repository": {"present": True}}},
    {"issuer": GITHUB, "subject_glob": "repo:*:environment:prod"},
    {"issuer": GITHUB, "subject_glob": "**"},
    {"issuer": GHEC, "claims": {"environment": {"equals": "prod"}}},
    {"issuer": GHES},
    {"issuer": f"{GHES}/", "subject_glob": "repo:*:ref:refs/heads/main"},
    {"issuer": GHES, "claims": {"repository_owner": {"equals": "acme"}}},
    {"issuer": "https://GITHUB.ACME.EXAMPLE:8443/_services/token"},
    # owner-wide or wildcard repositories name more than one repository
    {"issuer": GITHUB, "subject_glob": "repo:acme/*:*"},
    {"issuer": GITHUB, "subject_glob": "repo:acme/*"},
    {"issuer": GITHUB, "subject_glob": "repo:*/app:*"},
    {"issuer": GITHUB, "subject_glob": "repo:acme/api*:*"},
    {"issuer": GITHUB, "subject_glob": "repo:acme/**"},
    {"issuer": GITHUB, "subject_glob": ["repo:acme/api:*", "repo:acme/*:*"]},
    {"issuer": GHEC, "subject_glob": "repo:acme/*:environment:prod"},
    {"issuer": GITHUB, "subject": "repository_owner:acme:environment:prod"},
    {"issuer": GITHUB, "claims": {"repository": {"pattern": "acme/.*"}}},
    {"issuer": GITHUB, "claims": {"repository": {"pattern": "acme/api"}}},
    {"issuer": GITHUB, "claims": {"repository_id": {"pattern": "74"}}},
    {"issuer": GITHUB, "claims": {"repository": {"contains_any": ["acme/api"]}}},
])
def test_unbound_github_rules_warn(match: dict[str, object]) -> None:
    assert "github_unbound" in codes(match)


@pytest.mark.parametrize("match", [
    {"issuer": GITHUB, "subject": "repo:acme/api:environment:prod"},
    {"issuer": GITHUB, "subject_glob": "repo:acme/api:ref:refs/heads/*"},
    {"issuer": GITHUB, "claims": {"repository_id": {"equals": "74"}}},
    {"issuer": GITHUB, "claims": {"repository": {"in": ["acme/api", "acme/web"]}}},
    {"issuer": GITHUB, "subject_glob": "repo:acme/api"},
    {"issuer": GITHUB, "subject_glob": ["repo:acme/api:*", "repo:acme/web:environment:*"]},
    {"issuer": GITHUB, "subject_glob": "repo:acme/*:*",
     "claims": {"repository_id": {"equals": "74"}}},
    {"issuer": GITHUB, "claims": {"repository": {"equals": "acme/api", "pattern": "acme/.*"}}},
    {"issuer": GHEC, "subject_glob": "repo:acme/api:*"},
    {"issuer": GHES, "subject": "repo:acme/api:environment:prod"},
    {"issuer": GHES, "claims": {"repository_id": {"equals": "74"}}},
    {"issuer": "https://oidc.cluster.example"},
    {"issuer": "https://token.actions.githubusercontent.com.example"},
    {"issuer": "https://github.acme.example/_services/token/other"},
    {"issuer": "https://github.acme.example/login/oauth"},
])
def test_bound_or_other_rules_do_not(match: dict[str, object]) -> None:
    assert "github_unbound" not in codes(match)


def test_deny_rules_do_not_warn() -> None:
    assert "github_unbound" not in codes({"issuer": GITHUB}, effect="deny")
