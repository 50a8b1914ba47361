"""``aws_unbound``: an allow rule for AWS IAM identities must pin the AWS account, or it
admits a role or user of that name in anyone's account."""

from __future__ import annotations

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

ACCOUNT = "111122223333"
OKTA = "https://corp.okta.com/oauth2/default"


def codes(match: dict[str, object], effect: str = "allow") -> list[str]:
    rule: dict[str, object] = {"id": "r", "effect": effect, "match": match}
    if effect == "allow":
        rule["grant"] = {"account": "ORDERS", "publish": {"allow": ["orders.v2.created"]}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text))]


@pytest.mark.parametrize("match", [
    # the red-team repro: anyone's role named orders-lambda, and all of AWS
    {"source": "aws_iam", "aws": {"arn": "arn:aws:iam::*:role/orders-lambda"}},
    {"source": "aws_iam"},
    {"aws": {"arn": "arn:aws:iam::*:role/orders-lambda"}},              # aws implies the source
    {"aws": {"arn": [f"arn:aws:iam::{ACCOUNT}:role/a", "arn:aws:iam::*:role/b"]}},
    {"aws": {"arn": "arn:aws:iam::1111222233*:role/a"}},
    {"aws": {"arn": "arn:*:iam::**:role/a"}},
    {"aws": {"account": "1111*"}},
    {"aws": {"account": [ACCOUNT, "*"]}},
    {"issuer": "sts.amazonaws.com"},                                    # an STS host: AWS IAM
    {"source": "aws_iam", "issuer": "sts.eu-west-1.amazonaws.com"},
    {"source": "aws_iam", "subject_glob": "AROA*"},
    {"source": "aws_iam", "claims": {"account": {"pattern": "^[0-9]{12}$"}}},
    {"source": "aws_iam", "claims": {"arn_kind": {"equals": "role"}}},
])
def test_an_allow_rule_that_pins_no_account_warns(match: dict[str, object]) -> None:
    assert codes(match).count("aws_unbound") == 1


@pytest.mark.parametrize("match", [
    {"aws": {"account": ACCOUNT}},
    {"aws": {"account": [ACCOUNT, "444455556666"]}},
    {"aws": {"arn": f"arn:aws:iam::{ACCOUNT}:role/*"}},
    {"source": "aws_iam", "aws": {"arn": f"arn:aws:iam::{ACCOUNT}:**"}},
    {"aws": {"arn": "arn:aws:iam::*:role/a", "account": ACCOUNT}},
    {"source": "aws_iam", "subject": "AROAEXAMPLEID"},                  # unique ids: one principal
    {"source": "aws_iam", "subject_glob": "AROAEXAMPLEID"},
    {"source": "aws_iam", "claims": {"account": {"in": [ACCOUNT]}}},
    {"source": "aws_iam", "claims": {"arn": {"equals": f"arn:aws:iam::{ACCOUNT}:role/a"}}},
    {"source": "oidc", "issuer": OKTA},                                 # not AWS
    {"issuer": OKTA, "subject": "alice"},
    {"source": "nkey", "subject": "UAEXAMPLE2PLACEHOLDER2REPLACE2WITH2YOUR2SERVICE2KEY2BTET"},
])
def test_bound_or_other_rules_do_not(match: dict[str, object]) -> None:
    assert "aws_unbound" not in codes(match)


def test_deny_rules_do_not_warn() -> None:
    assert "aws_unbound" not in codes({"source": "aws_iam"}, effect="deny")
