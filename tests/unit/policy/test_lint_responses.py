"""``responses_bypass_deny``: a grant with ``responses`` can reply to any reply subject a
requester names, whatever publish denies (its own or a guardrail's) say."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from authsvc.policy import lint as lint_module
from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint
from authsvc.policy.model import Policy, Rule

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


# Another allow rule's publish deny: the red-team repro (billing-base denies payments.>,
# billing-responder grants responses; an identity in both groups gets one merged grant).
OIDC = {"source": "oidc", "issuer": "https://idp.example"}
BASE: dict[str, Any] = {
    "id": "billing-base", "match": {**OIDC, "groups": {"contains_any": ["svc-billing"]}},
    "grant": {"account": "APP", "publish": {"allow": ["billing.>"], "deny": ["payments.>"]},
              "subscribe": {"allow": ["billing.requests"]}}}
RESPONDS: dict[str, Any] = {
    "id": "billing-responder", "match": {**OIDC, "groups": {"contains_any": ["svc-responders"]}},
    "grant": {"account": "APP", "subscribe": {"allow": ["billing.requests"]},
              "responses": {"max": 1, "ttl": "5s"}}}


def flagged(*rules: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": list(rules)})
    return [w.rule_id for w in lint(load_policy_text(text)) if w.code == "responses_bypass_deny"]


def changed(rule: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {**rule, **parts}


def test_a_deny_of_another_rule_that_may_merge_warns_on_the_responses_rule() -> None:
    assert flagged(BASE, RESPONDS) == ["billing-responder"]
    assert flagged(RESPONDS, BASE) == ["billing-responder"]


@pytest.mark.parametrize("other", [
    changed(BASE, match={"source": "oidc", "issuer": "https://other.example"}),  # other issuer
    changed(BASE, match={"source": "nkey", "subject": "UBILLING"}),             # other source
    changed(BASE, grant={**BASE["grant"], "account": "OPS"}),                   # never merged
    changed(BASE, role="admin"),                                               # never merged
    changed(BASE, grant={k: v for k, v in BASE["grant"].items() if k != "publish"}),
])
def test_rules_that_cannot_merge_or_deny_nothing_do_not(other: dict[str, Any]) -> None:
    assert flagged(other, RESPONDS) == []


def test_exact_subjects_tell_rules_apart() -> None:
    base = changed(BASE, match={"source": "nkey", "subject": ["UONE", "UTWO"]})
    responds = changed(RESPONDS, match={"source": "nkey", "subject": "UTHREE"})
    assert flagged(base, responds) == []
    assert flagged(base, changed(responds, match={"source": "nkey", "subject": "UTWO"})) == [
        "billing-responder"]
    assert flagged(changed(base, match={"source": "nkey"}), responds) == ["billing-responder"]


def _random_rules(rnd: random.Random, count: int) -> list[Rule]:
    rules = []
    for index in range(count):
        match: dict[str, Any] = {}
        for key, choices in (("source", [None, "nkey", "oidc"]),
                             ("issuer", [None, "https://a", "https://b"]),
                             ("subject", [None, ["s1"], ["s1", "s2"], ["s2", "s3"]])):
            value = rnd.choice(choices)
            if value is not None:
                match[key] = value
        grant: dict[str, Any] = {"account": rnd.choice("AB"),
                                 "publish": {"allow": ["x.y"], "deny": rnd.choice([[], ["x.z"]])}}
        if rnd.random() < 0.4:
            grant["responses"] = {"max": 1, "ttl": "1s"}
        rules.append(Rule.model_validate({"id": f"r{index}", "role": rnd.choice([None, "ops"]),
                                          "match": match or {"subject_glob": "any-*"},
                                          "grant": grant}))
    return rules


def _by_definition(rules: list[Rule]) -> list[str]:
    """Every ordered pair compared: responses in one, a publish deny in another it merges with."""
    flagged = []
    for rule in rules:
        assert rule.grant is not None
        if rule.grant.responses is not None and (rule.grant.publish.deny or any(
                other is not rule and other.grant is not None and other.grant.publish.deny
                and other.grant.account == rule.grant.account and other.role == rule.role
                and lint_module._may_overlap(rule, other) for other in rules)):
            flagged.append(rule.id)
    return flagged


def test_the_index_finds_what_comparing_every_pair_finds() -> None:
    rnd = random.Random(11)
    for _ in range(40):
        rules = _random_rules(rnd, rnd.randint(2, 40))
        found = lint(Policy(rules=tuple(rules), revision="0" * 64))
        assert [w.rule_id for w in found if w.code == "responses_bypass_deny"] == \
            _by_definition(rules)
