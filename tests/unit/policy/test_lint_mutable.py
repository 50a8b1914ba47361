"""``mutable_identifier``: a claim condition on a value users, admins or a rename can change
warns, with the immutable claim to use instead; the example policies draw none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from authsvc.policy import load_policy, load_policy_text
from authsvc.policy.lint import lint

ROOT = Path(__file__).parents[3]


def warnings(claims: dict[str, object]) -> list[str]:
    rule = {"id": "r", "match": {"source": "oidc", "issuer": "https://idp.example",
                                 "subject": "s", "claims": claims},
            "grant": {"account": "APP", "subscribe": {"allow": ["svc.a"]}}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.message for w in lint(load_policy_text(text)) if w.code == "mutable_identifier"]


@pytest.mark.parametrize(("claim", "advice"), [
    ("email", "immutable id"),
    ("preferred_username", "immutable id"),
    ("repository", "repository_id"),
    ("repository_owner", "repository_owner_id"),
    ("actor", "actor_id"),
])
def test_a_mutable_claim_warns_with_what_to_match_instead(claim: str, advice: str) -> None:
    (message,) = warnings({claim: {"equals": "x"}})
    assert advice in message


@pytest.mark.parametrize("claim", ["repository_id", "repository_owner_id", "actor_id", "oid",
                                   "tenant"])
def test_an_immutable_claim_does_not_warn(claim: str) -> None:
    assert warnings({claim: {"equals": "x"}}) == []


def test_the_example_policies_match_no_mutable_identifier() -> None:
    policy = load_policy([ROOT / "policies" / "examples"])
    assert [w for w in lint(policy) if w.code == "mutable_identifier"] == []
