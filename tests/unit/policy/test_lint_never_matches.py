"""``never_matches``: a rule whose own conditions contradict each other, or a condition that
can never hold for what the verifiers produce, warns; sound rules do not."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from authsvc.domain import Identity, IdentitySource
from authsvc.identity.aws_iam import caller_identity
from authsvc.identity.aws_proof import sts_region
from authsvc.identity.sts import Caller
from authsvc.policy import load_policy_text
from authsvc.policy.claims import ClaimTest
from authsvc.policy.lint import AWS_IAM_ATTRIBUTES, USER_PUBLIC_KEY, lint
from authsvc.policy.lint_bindings import STS_HOST
from authsvc.protocol.nkeys import KeyPair, Prefix

OKTA = "https://corp.okta.com/oauth2/default"
USER_KEY = KeyPair.create(Prefix.USER).public_key
ACCOUNT = {"account": "111122223333"}


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
    # groups too is always a list (groups_claim goes through string_list)
    ({"source": "oidc", "issuer": OKTA, "groups": {"equals": "admins"}}, None),
    ({"issuer": OKTA, "groups": {"in": ["admins", "ops"]}}, None),
    ({"issuer": OKTA, "claims": {"groups": {"equals": "admins"}}}, None),
    ({"source": "nkey", "aws": ACCOUNT}, None),
    # nkey identities have no issuer, no claims, no groups, and a user public key as subject
    ({"source": "nkey", "issuer": OKTA}, None),
    ({"source": "nkey", "claims": {"team": {"equals": "ops"}}}, None),
    ({"source": "nkey", "groups": {"contains_any": ["ops"]}}, None),
    ({"source": "nkey", "subject": "orders-service"}, None),
    # an AWS IAM identity's issuer is its STS host; it carries no groups or token claims
    ({"source": "aws_iam", "issuer": OKTA}, None),
    ({"aws": ACCOUNT, "issuer": "https://sts.amazonaws.com"}, None),
    ({"source": "aws_iam", "groups": {"contains_any": ["ops"]}}, None),
    ({"source": "aws_iam", "claims": {"email": {"equals": "a@example.com"}}}, None),
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
    ({"source": "nkey", "subject": USER_KEY}, None),
    ({"source": "nkey", "claims": {"team": {"present": False}}}, None),  # absent: holds
    ({"source": "aws_iam", "issuer": "sts.eu-west-1.amazonaws.com", "aws": ACCOUNT}, None),
    ({"aws": ACCOUNT, "issuer": "sts-fips.us-gov-west-1.amazonaws.com"}, None),
    ({"source": "aws_iam", "claims": {"session_name": {"pattern": "^ci-[0-9]+$"}}}, None),
    ({"issuer": OKTA, "groups": {"contains_any": ["ops"]}}, None),  # any source: OIDC too
])
def test_a_rule_that_can_match_does_not_warn(match: dict[str, Any],
                                             grant_extra: dict[str, Any] | None) -> None:
    assert warnings(match, grant_extra) == []


def test_the_lint_knows_what_the_nkey_and_aws_verifiers_produce() -> None:
    """The sets and shapes the source checks rely on, against the verifiers themselves."""
    caller = Caller(arn="arn:aws:sts::111122223333:assumed-role/ci/run-7",
                    account="111122223333", user_id="AROAEXAMPLEID:run-7")
    identity = caller_identity(caller, "sts.eu-west-1.amazonaws.com", session_name=True)
    assert isinstance(identity, Identity) and identity.source is IdentitySource.AWS_IAM
    assert set(identity.attributes) == AWS_IAM_ATTRIBUTES
    for host in ("sts.amazonaws.com", "sts.eu-west-1.amazonaws.com",
                 "sts-fips.us-gov-west-1.amazonaws.com", "sts.cn-north-1.amazonaws.com.cn"):
        assert sts_region(host) is not None and STS_HOST.fullmatch(host)
    assert USER_PUBLIC_KEY.fullmatch(USER_KEY)


@pytest.mark.parametrize("match", [
    {"source": "oidc", "issuer": OKTA, "groups": {"equals": "contractors"}},
    {"issuer": OKTA, "groups": {"in": ["contractors", "vendors"]}},
    {"source": "oidc", "issuer": OKTA, "claims": {"aud": {"equals": "nats"}}},
])
def test_a_deny_rule_reads_a_list_as_any_value_so_equals_is_not_dead(
        match: dict[str, Any]) -> None:
    rule = {"id": "block", "effect": "deny", "match": match}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    assert "never_matches" not in [w.code for w in lint(load_policy_text(text))]


def test_the_lint_agrees_with_how_claims_read_a_list() -> None:
    test = ClaimTest(equals="admins")
    assert not test.holds(("admins",))                   # allow: the whole value, never a list
    assert test.holds(("admins", "ops"), fail_closed=True)  # deny: any value
