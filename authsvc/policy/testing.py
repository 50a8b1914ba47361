"""Running ``kind: PolicyTest`` cases through the same ``explain`` the service's ``evaluate``
uses, and reporting failures and the rules no case exercised."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from authsvc.domain import Allow, Deny
from authsvc.errors import PolicyError
from authsvc.policy.access import can_publish, can_receive, can_subscribe
from authsvc.policy.cases import Case, PolicyTestFile
from authsvc.policy.diagnostics import validation_error
from authsvc.policy.durations import format_duration
from authsvc.policy.engine import explain, refuse_forbidden
from authsvc.policy.load import load_policy
from authsvc.policy.model import Policy
from authsvc.policy.source import parse_yaml
from authsvc.policy.trace import Evaluation

_CHECKS = (
    ("can_publish", can_publish, True), ("cannot_publish", can_publish, False),
    ("can_subscribe", can_subscribe, True), ("cannot_subscribe", can_subscribe, False),
    ("can_receive", can_receive, True), ("cannot_receive", can_receive, False),
)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case: its name, what went wrong (empty when it passed) and the rules it matched."""

    file: str
    name: str
    failures: tuple[str, ...]
    matched: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """No expectation failed."""
        return not self.failures


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """All cases of one or more test files, and the rules no case matched."""

    cases: tuple[CaseResult, ...]
    unexercised: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """Every case passed."""
        return all(case.passed for case in self.cases)


def read_test_file(path: Path) -> PolicyTestFile:
    """Parse a PolicyTest file, without loading the policy it names."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read test file: {exc.strerror}", file=str(path)) from exc
    parsed = parse_yaml(text, str(path))
    try:
        return PolicyTestFile.model_validate(parsed.data)
    except ValidationError as exc:
        raise validation_error(exc, parsed.root, str(path)) from exc


def load_test_file(path: Path) -> tuple[PolicyTestFile, Policy]:
    """Parse a PolicyTest file and load the policy it names (relative to the file)."""
    tests = read_test_file(path)
    return tests, load_policy([path.parent / entry for entry in tests.policy])


def run_files(paths: Sequence[Path], forbidden: Collection[str] = ()) -> SuiteResult:
    """Run every case of every file; ``unexercised`` is over all policies loaded. An allow
    into a ``forbidden`` account is the deny ``serve`` gives (``refuse_forbidden``)."""
    results: list[CaseResult] = []
    all_rules: set[str] = set()
    for path in paths:
        tests, policy = load_test_file(path)
        all_rules.update(rule.id for rule in policy.rules)
        results.extend(run_case(case, policy, str(path), forbidden) for case in tests.cases)
    hit = {rule for result in results for rule in result.matched}
    return SuiteResult(cases=tuple(results), unexercised=tuple(sorted(all_rules - hit)))


def evaluate_case(case: Case, policy: Policy, forbidden: Collection[str] = ()) -> Evaluation:
    """The full evaluation of one case (what ``policy explain`` shows), with the decision
    ``serve`` gives when the grant's account is ``forbidden``."""
    evaluation = explain(case.identity.build(case.now), case.connection.build(case.now),
                         policy, case.now)
    return replace(evaluation, decision=refuse_forbidden(evaluation.decision, forbidden))


def run_case(case: Case, policy: Policy, file: str = "",
             forbidden: Collection[str] = ()) -> CaseResult:
    """Check one case's expectations against the engine's decision."""
    evaluation = evaluate_case(case, policy, forbidden)
    return CaseResult(file=file, name=case.name, failures=tuple(_failures(case, evaluation)),
                      matched=evaluation.matched_rule_ids)


def _failures(case: Case, evaluation: Evaluation) -> list[str]:
    expect, decision = case.expect, evaluation.decision
    got = "allow" if isinstance(decision, Allow) else "deny"
    if got != expect.decision:
        why = f" ({decision.reason})" if isinstance(decision, Deny) else ""
        return [f"decision: expected {expect.decision}, got {got}{why}"]
    if isinstance(decision, Deny):
        found = []
        if expect.reason is not None and decision.reason != expect.reason:
            found.append(f"reason: expected {expect.reason}, got {decision.reason}")
        if expect.rules is not None and tuple(sorted(expect.rules)) != decision.rule_ids:
            found.append(f"rules: expected {sorted(expect.rules)}, got {list(decision.rule_ids)}")
        return found
    return _allow_failures(case, decision)


def _allow_failures(case: Case, decision: Allow) -> list[str]:
    expect, grant = case.expect, decision.grant
    found = []
    if expect.account is not None and grant.account != expect.account:
        found.append(f"account: expected {expect.account}, got {grant.account}")
    if expect.rules is not None and tuple(sorted(expect.rules)) != grant.rule_ids:
        found.append(f"rules: expected {sorted(expect.rules)}, got {list(grant.rule_ids)}")
    if expect.ttl_at_most is not None and grant.ttl > expect.ttl_at_most:
        found.append(f"ttl: {format_duration(grant.ttl)} exceeds "
                     f"{format_duration(expect.ttl_at_most)}")
    if expect.ttl_at_least is not None and grant.ttl < expect.ttl_at_least:
        found.append(f"ttl: {format_duration(grant.ttl)} is below "
                     f"{format_duration(expect.ttl_at_least)}")
    for key, check, wanted in _CHECKS:
        for subject in getattr(expect, key):
            if check(grant.permissions, subject) is not wanted:
                found.append(f"{key}: {subject}")
    return found
