"""``responses_bypass_deny``: a grant with ``responses`` can reply to any reply subject a
requester names, whatever publish denies (its own or a guardrail's) say."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

RESPONDER: dict[str, Any] = {
    "id": "responder", "match": {"source": "nkey", "subject": "URESPONDER"},
    "grant": {"account": "APP", "subscribe": {"allow": ["svc.requests"]},
              "responses": {"max": 1, "ttl": "5s"}}}
GUARDRAIL: dict[str, Any] = {"id": "no-secrets", "effect": "deny",
                             "permissions": {"publish": ["secret.>"]}}


def codes(*rules: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": list(rules)})
    return [w.code for w in lint(load_policy_text(text))]


def with_grant(**grant: Any) -> dict[str, Any]:
    return {**RESPONDER, "grant": {**RESPONDER["grant"], **grant}}


@pytest.mark.parametrize("rules", [
    (RESPONDER, GUARDRAIL),
    (with_grant(publish={"allow": ["svc.events"], "deny": ["svc.events.admin"]}),),
])
def test_responses_beside_a_publish_deny_warn(rules: tuple[dict[str, Any], ...]) -> None:
    assert "responses_bypass_deny" in codes(*rules)


@pytest.mark.parametrize("rules", [
    (RESPONDER,),                                                      # nothing denied
    ({**RESPONDER, "grant": {k: v for k, v in RESPONDER["grant"].items()
                             if k != "responses"}}, GUARDRAIL),        # no responses
    (RESPONDER, {"id": "no-sub", "effect": "deny",
                 "permissions": {"subscribe": ["secret.>"]}}),         # a subscribe-only guardrail
])
def test_no_warning_without_both(rules: tuple[dict[str, Any], ...]) -> None:
    assert "responses_bypass_deny" not in codes(*rules)
