"""``account_overlap``: what it flags, that the index finds exactly what comparing every pair
finds, and that a large policy costs work in proportion to its rules and findings."""

from __future__ import annotations

import random
from itertools import combinations
from typing import Any

import pytest

from authsvc.policy import lint as lint_module
from authsvc.policy.lint import Warning, lint
from authsvc.policy.model import Policy, Rule

REVISION = "0" * 64
ROLE_A, ROLE_B = "arn:aws:iam::111111111111:role/a", "arn:aws:iam::111111111111:role/b"


def allow(rule_id: str, account: str, role: str | None = None, **match: Any) -> Rule:
    return Rule.model_validate({
        "id": rule_id, "role": role, "match": match,
        "grant": {"account": account, "subscribe": {"allow": [f"{rule_id}.>"]}}})


def overlaps(rules: list[Rule]) -> list[tuple[str, str]]:
    """(earlier rule, flagged rule) of every account_overlap warning, in lint's order."""
    found = lint(Policy(rules=tuple(rules), revision=REVISION))
    return [(_first(w), w.rule_id) for w in found if w.code == "account_overlap"]


def _first(warning: Warning) -> str:
    return warning.message.split("'")[1]  # "... as 'FIRST' but ...": the rule it overlaps


@pytest.mark.parametrize(("first", "second", "expected"), [
    ({"source": "nkey"}, {"source": "nkey"}, True),
    ({"source": "nkey"}, {"source": "oidc"}, False),
    ({"issuer": "https://a"}, {"issuer": "https://a", "subject": "x"}, True),
    ({"issuer": "https://a"}, {"issuer": "https://b"}, False),
    ({"source": "oidc"}, {"issuer": "https://a"}, True),              # one leaves it open
    ({"subject": ["x", "y"]}, {"subject": ["y", "z"]}, True),
    ({"subject": ["x", "y"]}, {"subject": "z"}, False),
    ({"subject": "x"}, {"subject_glob": "x*"}, True),                 # globs are not compared
    ({"source": "oidc", "subject": "x"}, {"source": "nkey", "subject": "x"}, False),
    ({"aws": {"arn": ROLE_A}}, {"aws": {"arn": ROLE_B}}, False),      # one ARN per identity
    ({"aws": {"arn": [ROLE_A, ROLE_B]}}, {"aws": {"arn": ROLE_B}}, True),
    ({"aws": {"arn": ROLE_A}}, {"aws": {"arn": "arn:aws:iam::111111111111:role/*"}}, True),
    ({"aws": {"arn": ROLE_A}}, {"source": "aws_iam"}, True),
])
def test_what_may_overlap(first: dict[str, Any], second: dict[str, Any], expected: bool) -> None:
    rules = [allow("one", "A", **first), allow("two", "B", **second)]
    assert overlaps(rules) == ([("one", "two")] if expected else [])


def test_same_account_or_different_roles_do_not_overlap() -> None:
    assert overlaps([allow("one", "A", source="nkey"), allow("two", "A", source="nkey")]) == []
    assert overlaps([allow("one", "A", "ops", source="nkey"),
                     allow("two", "B", "dev", source="nkey")]) == []
    assert overlaps([allow("one", "A", "ops", source="nkey"),
                     allow("two", "B", "ops", source="nkey")]) == [("one", "two")]


def _random_rules(rnd: random.Random, count: int) -> list[Rule]:
    rules = []
    for index in range(count):
        match: dict[str, Any] = {}
        for key, choices in (("source", [None, "nkey", "oidc"]),
                             ("issuer", [None, "https://a", "https://b"]),
                             ("subject", [None, ["s1"], ["s1", "s2"], ["s2", "s3"], ["s4"]]),
                             ("aws", [None, {"arn": ROLE_A}, {"arn": [ROLE_A, ROLE_B]},
                                      {"arn": ROLE_B},
                                      {"arn": "arn:aws:iam::111111111111:role/*"}])):
            value = rnd.choice(choices)
            if value is not None:
                match[key] = value
        match = match or {"subject_glob": "any-*"}
        rules.append(allow(f"r{index}", rnd.choice("ABC"), rnd.choice([None, "ops"]), **match))
    return rules


def _every_pair(rules: list[Rule]) -> list[tuple[str, str]]:
    """The definition, by brute force: every pair, in order."""
    found = []
    for first, second in combinations(rules, 2):
        assert first.grant is not None and second.grant is not None
        if first.grant.account != second.grant.account and first.role == second.role \
                and lint_module._may_overlap(first, second):
            found.append((first.id, second.id))
    return found


def test_the_index_finds_what_comparing_every_pair_finds() -> None:
    rnd = random.Random(7)
    for _ in range(40):
        rules = _random_rules(rnd, rnd.randint(2, 60))
        assert overlaps(rules) == _every_pair(rules)


def _fleet(count: int) -> list[Rule]:
    """Services by exact nkey, AWS roles by ARN, Kubernetes accounts by issuer and subject,
    and deploy jobs by subject glob under per-tenant issuers (5 per issuer), over seven
    accounts."""
    rules = []
    for i in range(count):
        account = f"APP{i % 7}"
        if i % 6 == 0:
            rules.append(allow(f"svc-{i}", account, source="nkey", subject=f"UKEY{i}"))
        elif i % 6 == 3:
            rules.append(allow(f"aws-{i}", account, source="aws_iam",
                               aws={"arn": f"arn:aws:iam::{i % 50:012d}:role/svc-{i}"}))
        elif i % 3 == 1:
            rules.append(allow(f"k8s-{i}", account, source="oidc",
                               issuer=f"https://k8s-{i % 40}", subject=f"sa-{i}"))
        else:
            rules.append(allow(f"ci-{i}", account, source="oidc",
                               issuer=f"https://ci/tenant-{i // 15}", subject_glob=f"repo-{i}*"))
    return rules


def test_a_large_policy_costs_work_in_proportion_to_rules_and_findings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compared = 0
    definition = lint_module._may_overlap

    def counted(first: Rule, second: Rule) -> bool:
        nonlocal compared
        compared += 1
        return definition(first, second)

    monkeypatch.setattr(lint_module, "_may_overlap", counted)
    rules = _fleet(6000)
    found = overlaps(rules)
    # Only the deploy jobs under one tenant issuer overlap (5 per issuer, C(5, 2) pairs, the
    # ones in different accounts). Every pair of 6,000 rules would be ~18 million.
    assert 0 < len(found) <= len(rules)
    assert compared == len(found)
