"""``non_ascii``: lookalike characters in subjects and accounts; ``never_matches`` for an
issuer padded with whitespace."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint


def codes(rule: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]},
                          allow_unicode=True)
    return [w.code for w in lint(load_policy_text(text))]


def allow(account: str = "APP", subject: str = "orders.created",
          issuer: str = "https://idp.example") -> dict[str, Any]:
    return {"id": "r", "match": {"source": "oidc", "issuer": issuer, "subject": "svc"},
            "grant": {"account": account, "publish": {"allow": [subject]}}}


@pytest.mark.parametrize("rule", [
    allow(subject="orders.\uff1e"),                       # fullwidth >
    allow(subject="orders\u2024created"),                 # one dot leader, not '.'
    allow(account="A\u03a1\u03a1"),                       # Greek Rho
    {"id": "g", "effect": "deny", "permissions": {"publish": ["secret.\uff0a"]}},
])
def test_lookalikes_warn(rule: dict[str, Any]) -> None:
    assert "non_ascii" in codes(rule)


def test_ascii_does_not_warn() -> None:
    assert "non_ascii" not in codes(allow())


def test_an_issuer_with_whitespace_never_matches() -> None:
    assert "never_matches" in codes(allow(issuer="https://idp.example "))
    assert "never_matches" not in codes(allow())
