"""Decision cases from tests/data/policy/decisions/*.yaml, run through evaluate()."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict

from authsvc.domain import (
    Allow,
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Decision,
    Deny,
    DenyReason,
    Grant,
    Identity,
    IdentitySource,
    Limits,
    Permissions,
    ResponsePermission,
    ServerInfo,
    SubjectPermission,
)
from authsvc.policy import Policy, evaluate, explain, load_policy
from authsvc.policy.durations import parse_duration

DATA = Path(__file__).parents[2] / "data" / "policy"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
_STRICT = ConfigDict(frozen=True, extra="forbid")


class CaseIdentity(BaseModel):
    model_config = _STRICT
    source: IdentitySource
    subject: str
    issuer: str = ""
    attributes: dict[str, str | bool | int | list[str]] = {}
    expires_in: Duration | None = None

    def build(self, now: datetime = NOW) -> Identity:
        attributes = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in self.attributes.items()}
        return Identity(source=self.source, principal=f"{self.source}:{self.subject}",
                        subject=self.subject, issuer=self.issuer, attributes=attributes,
                        expires_at=now + self.expires_in if self.expires_in else None)


class Connection(BaseModel):
    model_config = _STRICT
    host: str = "127.0.0.1"
    type: str = "nats"
    kind: str = "Client"
    user: str = ""


class Subjects(BaseModel):
    model_config = _STRICT
    allow: tuple[str, ...]
    deny: tuple[str, ...]


class Resp(BaseModel):
    model_config = _STRICT
    max: int
    ttl: Duration


class Perms(BaseModel):
    model_config = _STRICT
    pub: Subjects
    sub: Subjects
    resp: Resp | None = None


class LimitValues(BaseModel):
    model_config = _STRICT
    subs: int
    payload: int
    data: int


class Expect(BaseModel):
    """Allow cases state the whole grant; deny cases state reason and rule ids."""

    model_config = _STRICT
    decision: Literal["allow", "deny"]
    rule_ids: tuple[str, ...]
    reason: DenyReason | None = None
    account: str | None = None
    ttl: Duration | None = None
    permissions: Perms | None = None
    limits: LimitValues | None = None

    def decision_value(self) -> Decision:
        if self.decision == "deny":
            assert self.reason is not None
            assert self.account is self.ttl is self.permissions is self.limits is None
            return Deny(self.reason, rule_ids=self.rule_ids)
        assert self.reason is None
        assert self.account and self.ttl and self.permissions and self.limits
        perms = self.permissions
        return Allow(Grant(
            account=self.account,
            permissions=Permissions(
                pub=SubjectPermission(allow=perms.pub.allow, deny=perms.pub.deny),
                sub=SubjectPermission(allow=perms.sub.allow, deny=perms.sub.deny),
                resp=ResponsePermission(max_msgs=perms.resp.max, ttl=perms.resp.ttl)
                if perms.resp else None,
            ),
            limits=Limits(**self.limits.model_dump()),
            ttl=self.ttl,
            rule_ids=self.rule_ids,
        ))


class Case(BaseModel):
    model_config = _STRICT
    name: str
    identity: CaseIdentity
    connection: Connection = Connection()
    now: datetime = NOW
    expect: Expect


class CaseFile(BaseModel):
    model_config = _STRICT
    policies: tuple[str, ...]
    cases: tuple[Case, ...]


def _request(connection: Connection) -> ConnectRequest:
    return ConnectRequest(
        server=ServerInfo(id="NSERVER"), user_nkey="UCONNECTION",
        client=ClientInfo(host=connection.host, type=connection.type, kind=connection.kind),
        connect=ConnectOptions(user=connection.user), request_id="req-1",
        issued_at=NOW, expires_at=NOW + timedelta(seconds=2),
    )


@cache
def _policy(path: str) -> Policy:
    return load_policy([DATA / path])


def _cases() -> list[tuple[str, Case]]:
    found = []
    for path in sorted((DATA / "decisions").glob("*.yaml")):
        case_file = CaseFile.model_validate(yaml.safe_load(path.read_text()))
        found += [(policy, case) for policy in case_file.policies for case in case_file.cases]
    return found


def _comparable(decision: Decision) -> Decision:
    """Deny detail is free text for the audit log; everything else is compared."""
    if isinstance(decision, Deny):
        return Deny(decision.reason, rule_ids=decision.rule_ids)
    return decision


CASES = _cases()


@pytest.mark.parametrize(("policy", "case"), CASES,
                         ids=[f"{Path(p).stem}: {c.name}" for p, c in CASES])
def test_decision(policy: str, case: Case) -> None:
    identity, request = case.identity.build(case.now), _request(case.connection)
    decision = evaluate(identity, request, _policy(policy), case.now)
    assert _comparable(decision) == case.expect.decision_value()
    # The rule index only skips rules that cannot match: a full scan decides the same.
    full = explain(identity, request, _policy(policy), case.now, every_rule=True)
    assert full.decision == decision


@pytest.mark.parametrize(("policy", "case"), CASES,
                         ids=[f"{Path(p).stem}: {c.name}" for p, c in CASES])
def test_rule_order_has_no_meaning(policy: str, case: Case) -> None:
    loaded = _policy(policy)
    identity, request = case.identity.build(case.now), _request(case.connection)
    expected = evaluate(identity, request, loaded, case.now)
    rules = list(loaded.rules)
    for shift in range(1, len(rules)):
        rotated = loaded.model_copy(update={"rules": tuple(rules[shift:] + rules[:shift])})
        assert evaluate(identity, request, rotated, case.now) == expected
    reverse = loaded.model_copy(update={"rules": tuple(reversed(rules))})
    assert evaluate(identity, request, reverse, case.now) == expected


def test_case_files_cover_every_reason_the_engine_gives() -> None:
    reasons = {case.expect.reason for _, case in CASES}
    assert reasons >= {DenyReason.NO_MATCHING_RULE, DenyReason.EXPLICIT_DENY,
                       DenyReason.ACCOUNT_AMBIGUOUS, DenyReason.ROLE_NOT_PERMITTED,
                       DenyReason.CONNECTION_NOT_ALLOWED, DenyReason.OUTSIDE_CONNECT_WINDOW,
                       DenyReason.TEMPLATE_INVALID}


def test_order_variants_really_differ_in_order() -> None:
    first, last = _policy("policies/deny_first.yaml"), _policy("policies/deny_last.yaml")
    assert [r.id for r in first.rules] != [r.id for r in last.rules]
    assert sorted(first.rules, key=lambda r: r.id) == sorted(last.rules, key=lambda r: r.id)


def test_explain_traces_every_rule_with_failing_conditions() -> None:
    policy = _policy("policies/basic.yaml")
    identity = Identity(source=IdentitySource.OIDC, principal="oidc:x", subject="UORDERS",
                        issuer="https://other.example")
    evaluation = explain(identity, _request(Connection()), policy, NOW)
    assert evaluation.decision == evaluate(identity, _request(Connection()), policy, NOW)
    assert evaluation.revision == policy.revision
    assert [(t.rule_id, t.failed) for t in evaluation.rules] == [
        ("orders-writer", ("source",)),
        ("idp-readers", ("issuer", "subject")),
    ]
    assert evaluation.matched_rule_ids == ()


def test_explain_lists_matched_rules_including_denies() -> None:
    policy = _policy("policies/deny_last.yaml")
    identity = Identity(source=IdentitySource.OIDC, principal="oidc:m", subject="mallory",
                        issuer="https://idp.example")
    evaluation = explain(identity, _request(Connection()), policy, NOW)
    assert evaluation.matched_rule_ids == ("block-mallory", "staff")


def test_now_does_not_change_a_v1_decision() -> None:
    policy = _policy("policies/basic.yaml")
    identity = Identity(source=IdentitySource.NKEY, principal="nkey:UORDERS", subject="UORDERS")
    request = _request(Connection())
    assert evaluate(identity, request, policy, NOW) == evaluate(
        identity, request, policy, NOW + timedelta(days=400))


ALLOWED_IMPORTS = ("authsvc.domain", "authsvc.errors", "authsvc.policy")


@pytest.mark.parametrize("module", sorted((Path(__file__).parents[3] / "authsvc" / "policy")
                                          .glob("*.py")), ids=lambda p: p.name)
def test_policy_imports_only_domain_and_errors(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names]
    ours = [name for name in imported if name.split(".")[0] == "authsvc"]
    assert all(name.startswith(ALLOWED_IMPORTS) for name in ours), ours


@pytest.mark.parametrize(("source", "expected"), [
    (IdentitySource.AWS_IAM, "allow"), (IdentitySource.OIDC, "deny"),
    (IdentitySource.NKEY, "deny")])
def test_aws_conditions_only_ever_match_aws_identities(source: IdentitySource,
                                                       expected: str) -> None:
    """A rule with ``aws`` but no ``source``: an OIDC token whose issuer maps claims named
    ``arn``/``account`` carries the same attributes, and must still not match."""
    from authsvc.policy import load_policy_text

    policy = load_policy_text(
        "apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: ci\n    match:\n"
        "      aws: {arn: 'arn:aws:iam::111122223333:user/ci/*', account: '111122223333'}\n"
        "    grant: {account: APP, publish: {allow: [ci.status]}}\n")
    identity = Identity(source=source, principal=f"{source}:x", subject="x", attributes={
        "arn": "arn:aws:iam::111122223333:user/ci/builder", "account": "111122223333"})
    decision = evaluate(identity, _request(Connection()), policy, NOW)
    assert ("allow" if isinstance(decision, Allow) else "deny") == expected
    if isinstance(decision, Deny):
        assert decision.reason is DenyReason.NO_MATCHING_RULE


ROLES = """
apiVersion: authsvc/v1
kind: Policy
rules:
  - id: base
    match: {source: nkey, subject: UOPS}
    grant: {account: APP, subscribe: {allow: ["ops.status"]}}
  - id: admin
    role: admin
    match: {source: nkey, subject: UOPS}
    grant: {account: APP, publish: {allow: [">"]}}
"""


@pytest.mark.parametrize(("user", "rule_ids"), [
    ("", ("base",)),                 # no role asked: the admin grant is not added
    ("role:admin", ("admin",)),      # asked: only the role's rules
])
def test_a_role_is_granted_only_to_a_client_that_asks_for_it(
        user: str, rule_ids: tuple[str, ...]) -> None:
    from authsvc.policy import load_policy_text

    identity = Identity(source=IdentitySource.NKEY, principal="nkey:UOPS", subject="UOPS")
    decision = evaluate(identity, _request(Connection(user=user)), load_policy_text(ROLES),
                        NOW)
    assert isinstance(decision, Allow) and decision.grant.rule_ids == rule_ids


GITHUB = """
apiVersion: authsvc/v1
kind: Policy
rules:
  - id: deploy
    match:
      source: oidc
      issuer: https://token.actions.githubusercontent.com
      claims:
        ref: {pattern: "refs/heads/([a-z0-9]+-?)+"}
        repository_id: {equals: "123456"}
    grant: {account: DEPLOY, publish: {allow: [deploy.requests]}}
"""


def test_a_token_that_fails_a_cheap_condition_never_reaches_a_pattern(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone can mint a GitHub Actions token with any branch name; the rule pins the
    repository, so another repository's token is refused before the pattern runs."""
    from authsvc.policy import claims, load_policy_text

    ran: list[str] = []
    real = claims._fullmatch
    monkeypatch.setattr(claims, "_fullmatch", lambda p, v: ran.append(v) or real(p, v))
    policy = load_policy_text(GITHUB)
    evil = Identity(source=IdentitySource.OIDC, principal="oidc:gh#x", subject="x",
                    issuer="https://token.actions.githubusercontent.com",
                    attributes={"ref": "refs/heads/" + "a" * 27 + "!", "repository_id": "666"})
    decision = evaluate(evil, _request(Connection()), policy, NOW)
    assert isinstance(decision, Deny) and decision.reason is DenyReason.NO_MATCHING_RULE
    assert ran == []
    good = Identity(source=IdentitySource.OIDC, principal="oidc:gh#y", subject="y",
                    issuer="https://token.actions.githubusercontent.com",
                    attributes={"ref": "refs/heads/main", "repository_id": "123456"})
    assert isinstance(evaluate(good, _request(Connection()), policy, NOW), Allow)
    assert ran == ["refs/heads/main"]
