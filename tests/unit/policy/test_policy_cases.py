"""``kind: PolicyTest`` files refuse, at load and located, expectation keys that the expected
decision cannot have: a deny has no grant (account, TTL, subjects), an allow no reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from authsvc.domain import Deny
from authsvc.errors import PolicyError
from authsvc.policy.cases import DEFAULT_NOW, CaseIdentity, PolicyTestFile
from authsvc.policy.problems import code_of, each
from authsvc.policy.testing import read_test_file, run_files

HEAD = """apiVersion: authsvc/v1
kind: PolicyTest
policy: [policy.yaml]
cases:
  - name: the case
    identity: {source: nkey, subject: UNOBODY}
    expect:
"""
POLICY = """apiVersion: authsvc/v1
kind: Policy
rules:
  - id: someone
    match: {source: nkey, subject: USOMEONE}
    grant: {account: APP, publish: {allow: [a.b]}}
"""
GRANT_KEYS = {
    "account": "APP", "ttl_at_most": "15m", "ttl_at_least": "1m",
    "can_publish": "[a.b]", "cannot_publish": "[a.c]", "can_subscribe": "[a.>]",
    "cannot_subscribe": "[b.>]", "can_receive": "[a.b]", "cannot_receive": "[a.c]",
}


def _write(tmp_path: Path, decision: str, key: str, value: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    path = tmp_path / "cases.yaml"
    # The offending key is on line 10; its value starts in column 7 + len(key) + 2.
    path.write_text(f"{HEAD}      decision: {decision}\n      rules: []\n      {key}: {value}\n")
    return path


def _error_type(path: Path) -> tuple[str, tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as caught:
        PolicyTestFile.model_validate(yaml.safe_load(path.read_text()))
    (error,) = caught.value.errors()
    return error["type"], tuple(error["loc"])


def _problems(path: Path) -> list[tuple[str, int, int]]:
    """(code, line, column) of every problem reading ``path`` reports."""
    with pytest.raises(PolicyError) as caught:
        read_test_file(path)
    assert all(problem.file == str(path) for problem in each(caught.value))
    return [(code_of(problem), problem.line, problem.column) for problem in each(caught.value)]


@pytest.mark.parametrize(("key", "value"), sorted(GRANT_KEYS.items()))
def test_a_deny_case_refuses_grant_keys_where_they_stand(tmp_path: Path, key: str,
                                                         value: str) -> None:
    path = _write(tmp_path, "deny", key, value)
    assert _error_type(path) == ("expect_allow_only", ("cases", 0, "expect", key))
    assert _problems(path) == [("expect_allow_only", 10, 7 + len(key) + 2)]


def test_an_allow_case_refuses_a_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "allow", "reason", "no_matching_rule")
    assert _error_type(path) == ("expect_deny_only", ("cases", 0, "expect", "reason"))
    assert _problems(path) == [("expect_deny_only", 10, 15)]


@pytest.mark.parametrize(("decision", "key", "value"), [
    ("deny", "reason", "no_matching_rule"),
    *(("allow", key, value) for key, value in sorted(GRANT_KEYS.items()) if key != "account"),
])
def test_keys_that_fit_the_decision_load(tmp_path: Path, decision: str, key: str,
                                         value: str) -> None:
    read_test_file(_write(tmp_path, decision, key, value))


def test_a_deny_case_still_checks_its_reason_and_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, "deny", "reason", "explicit_deny")
    (case,) = run_files([path]).cases
    assert case.failures and case.failures[0].startswith("reason:")


def test_a_problem_inside_a_case_is_reported_where_it_is(tmp_path: Path) -> None:
    path = _write(tmp_path, "deny", "acount", "APP")  # a typo, and not also "cases is empty"
    assert _problems(path) == [("unknown_key", 10, 7)]


# A case's identity gets, by default, the principal its source's verifier would give it, so
# that a grant templated on it (``{{principal.hash}}``) renders in a test as in production.
def _verified_oidc() -> str:
    from authsvc.identity.claims import ClaimRules
    from authsvc.identity.jwk import import_key_set
    from authsvc.identity.jwks import StaticKeys
    from authsvc.identity.oidc import OidcIssuer, claims_identity

    issuer = OidcIssuer(rules=ClaimRules(issuer="https://idp.example", audiences=frozenset()),
                        algorithms=frozenset({"RS256"}), keys=StaticKeys(import_key_set([])))
    identity = claims_identity({"iss": "https://idp.example", "sub": "u1", "exp": 2**31}, issuer)
    assert not isinstance(identity, Deny)
    return identity.principal


def _verified_aws() -> str:
    from authsvc.identity.aws_iam import caller_identity
    from authsvc.identity.sts import Caller

    identity = caller_identity(
        Caller(arn="arn:aws:sts::111122223333:assumed-role/app/session-1",
               account="111122223333", user_id="AROAEXAMPLE:session-1"),
        "sts.amazonaws.com")
    assert not isinstance(identity, Deny)
    return identity.principal


@pytest.mark.parametrize(("identity", "verified"), [
    ({"source": "oidc", "subject": "u1", "issuer": "https://idp.example"}, _verified_oidc),
    ({"source": "aws_iam", "subject": "AROAEXAMPLE",
      "attributes": {"arn": "arn:aws:iam::111122223333:role/app"}}, _verified_aws),
    ({"source": "nkey", "subject": "UABC"}, lambda: "nkey:UABC"),
])
def test_a_case_principal_defaults_to_what_the_verifier_makes(
        identity: dict[str, Any], verified: Callable[[], str]) -> None:
    built = CaseIdentity.model_validate(identity).build(DEFAULT_NOW)
    assert built.principal == verified()


def test_a_case_without_issuer_or_arn_falls_back_and_an_explicit_principal_wins() -> None:
    bare = CaseIdentity.model_validate({"source": "aws_iam", "subject": "AROAEXAMPLE"})
    assert bare.build(DEFAULT_NOW).principal == "aws_iam:AROAEXAMPLE"
    given = CaseIdentity.model_validate({"source": "oidc", "subject": "u1", "issuer": "https://i",
                                         "principal": "oidc:custom"})
    assert given.build(DEFAULT_NOW).principal == "oidc:custom"


def test_an_oidc_case_gets_groups_and_aud_as_lists_as_the_verifier_makes_them() -> None:
    built = CaseIdentity.model_validate({"source": "oidc", "subject": "u", "issuer": "https://i",
                                         "attributes": {"groups": "admins", "aud": "nats",
                                                        "team": "ops"}}).build(DEFAULT_NOW)
    assert built.attributes == {"groups": ("admins",), "aud": ("nats",), "team": "ops"}
