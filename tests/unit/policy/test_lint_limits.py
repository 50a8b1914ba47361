"""``limits_not_enforced``: nats-server ignores a callout-issued user's subs, payload and data
limits, so a grant that sets one warns; the example policies set none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from authsvc.policy import load_policy, load_policy_text
from authsvc.policy.lint import lint
from authsvc.policy_gates import lint_loaded

ROOT = Path(__file__).parents[3]
EXAMPLES = sorted([ROOT / "policies" / "demo.yaml",
                   *(ROOT / "policies" / "examples").glob("*.yaml"),
                   *(ROOT / "deploy" / "kubernetes" / "policies").glob("*.yaml")])


def codes(grant_extra: dict[str, object]) -> list[str]:
    rule = {"id": "svc", "match": {"source": "nkey", "subject": "USVC"},
            "grant": {"account": "APP", "subscribe": {"allow": ["svc.>"]}, **grant_extra}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text))]


@pytest.mark.parametrize("limits", [
    {"subs": 10},
    {"payload": 65536},
    {"data": 0},
    {"subs": 0, "payload": 0, "data": 0},
    {"subs": -1, "payload": 16, "data": -1},
])
def test_a_bounded_limit_warns(limits: dict[str, int]) -> None:
    assert codes({"limits": limits}).count("limits_not_enforced") == 1


@pytest.mark.parametrize("grant_extra", [
    {},
    {"limits": {}},
    {"limits": {"subs": -1, "payload": -1, "data": -1}},
])
def test_no_limits_or_unlimited_do_not_warn(grant_extra: dict[str, object]) -> None:
    assert "limits_not_enforced" not in codes(grant_extra)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_policies_are_lint_clean(path: Path) -> None:
    # As serve and policy check lint them (the demo keys flagged outside the demo).
    assert [(w.rule_id, w.code) for w in lint_loaded(load_policy([path]))] == []
