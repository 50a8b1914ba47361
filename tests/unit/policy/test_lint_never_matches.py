"""``never_matches``: a rule whose own conditions contradict each other, or a condition that
can never hold for what the verifiers produce, warns; sound rules do not."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

OKTA = "https://corp.okta.com/oauth2/default"


def warnings(match: dict[str, Any], grant_extra: dict[str, Any] | None = None) -> list[str]:
    rule = {"id": "r", "match": match,
            "grant": {"account": "APP", "subscribe": {"allow": ["svc.a"]}, **(grant_extra or {})}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.message for w in lint(load_policy_text(text)) if w.code == "never_matches"]


@pytest.mark.parametrize(("match", "grant_extra"), [
    ({"source": "oidc", "aws": {"account": "111122223333"}}, None),
    ({"subject": "a", "subject_glob": "b*"}, None),
    ({"source": "nkey", "connection_types": ["MQTT"]}, {"connection_types": ["WEBSOCKET"]}),
    # the OIDC verifier turns aud into a list, even from "aud": "x"
    ({"source": "oidc", "issuer": OKTA, "claims": {"aud": {"equals": "nats"}}}, None),
    ({"issuer": OKTA, "claims": {"aud": {"in": ["nats", "edge"]}}}, None),
    ({"source": "oidc", "claims": {"mutable_claims": {"equals": "email"}}}, None),
])
def test_a_rule_that_cannot_match_warns_once(match: dict[str, Any],
                                             grant_extra: dict[str, Any] | None) -> None:
    assert len(warnings(match, grant_extra)) == 1


@pytest.mark.parametrize(("match", "grant_extra"), [
    ({"source": "aws_iam", "aws": {"account": "111122223333"}}, None),
    ({"subject": "build-7", "subject_glob": "build-*"}, None),
    ({"source": "nkey", "connection_types": ["MQTT", "WEBSOCKET"]},
     {"connection_types": ["WEBSOCKET"]}),
    ({"source": "oidc", "claims": {"aud": {"contains_any": ["nats"]}}}, None),
    ({"source": "oidc", "claims": {"aud": {"present": True}}}, None),
    ({"source": "oidc", "claims": {"aud": {"pattern": "^nats-[a-z]+$"}}}, None),  # each value
    ({"source": "oidc", "claims": {"tenant": {"equals": "acme"}}}, None),
])
def test_a_rule_that_can_match_does_not_warn(match: dict[str, Any],
                                             grant_extra: dict[str, Any] | None) -> None:
    assert warnings(match, grant_extra) == []
