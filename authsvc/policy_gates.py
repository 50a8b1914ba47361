"""The checks a candidate policy must pass before it may serve, at startup and on reload.

In the order a reviewer would check it:

1. ``load_policy``: YAML, schema and semantic errors (``file:line:column``);
2. the composition root's account check (no grant into the callout or system account; in
   operator mode, a signing key for every account);
3. lint, only with ``reject_warnings`` (then any warning blocks); ``lint_loaded`` is lint as
   serve, reload and ``policy check`` run it;
4. the ``PolicyTest`` cases of ``test_paths``, run against the candidate (not against the
   policy the test files name), through the same ``explain`` the service uses.

``build`` runs steps 1, 3 and 4, which need nothing but the files; a reload runs it in a
child process (``policy_worker``). ``admit`` then runs step 2, which needs the service's
keys and so stays in the service, and reports the first failure in the order above.
``prepare`` is both in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from authsvc.demo.identities import keys_to_flag
from authsvc.domain import Identity, IdentitySource
from authsvc.errors import ConfigError, PolicyError
from authsvc.policy import Policy, load_policy
from authsvc.policy.lint import Warning, lint
from authsvc.policy.load import POLICY_SUFFIXES
from authsvc.policy.problems import each
from authsvc.policy.testing import read_test_file, run_case

# Audit details stay readable and bounded, whatever a broken file or suite produces.
MAX_ISSUES = 10
MAX_DETAIL = 4000


class RejectReason(StrEnum):
    """Why a candidate policy was not activated (``reason`` of ``policy.reload_rejected``)."""

    POLICY_INVALID = "policy_invalid"          # unreadable, YAML, schema or semantic error
    ACCOUNTS_REFUSED = "accounts_refused"      # an account this service cannot place users in
    LINT_WARNINGS = "lint_warnings"            # warnings, with ``reject_warnings``
    TEST_CASES_INVALID = "test_cases_invalid"  # a test file cannot be loaded
    TEST_CASES_FAILED = "test_cases_failed"    # a case's expectation does not hold
    INTERNAL_ERROR = "internal_error"          # a fault in authsvc while loading (a bug)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate that failed a step: the code, and the text for the log and audit.

    ``issues`` lists what ``detail`` summarises, one entry per problem (for startup's error,
    which names each on a line of its own); empty where ``detail`` is the only one.
    """

    reason: RejectReason
    detail: str
    issues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReloadSources:
    """Where the policy comes from and which checks a candidate must pass."""

    paths: tuple[Path, ...]
    test_paths: tuple[Path, ...] = ()
    reject_warnings: bool = False
    # The exact OIDC issuers of the settings, for lint's issuer_not_configured (None: unknown).
    oidc_issuers: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Built:
    """A policy that loaded, and the verdict of the optional gates (``None``: passed)."""

    policy: Policy
    vetted: Rejected | None


AccountCheck = Callable[[Policy], None]  # raises ConfigError for accounts it refuses


class PolicyRefused(PolicyError):
    """Startup's form of a rejection: the policy loads but fails a configured gate.

    With ``lines`` (one problem each, located where possible) it reads as the reason and
    then those lines; without, as ``file: policy refused (reason): detail``.
    """

    def __init__(self, rejected: Rejected, *, file: str = "",
                 lines: Sequence[str] = ()) -> None:
        self.reason = rejected.reason
        self.lines = tuple(lines)
        super().__init__(f"policy refused ({rejected.reason}): {rejected.detail}", file=file)

    def render(self) -> str:
        if not self.lines:
            return super().render()
        return "\n".join([f"policy refused ({self.reason}):", *self.lines])


def build(sources: ReloadSources) -> Built | Rejected:
    """Steps 1, 3 and 4, and the rules' conditions built ahead of the first request.
    Blocking: seconds for a large policy."""
    try:
        policy = load_policy(sources.paths)
    except PolicyError as exc:
        return Rejected(RejectReason.POLICY_INVALID, str(exc))
    vetted = vet(policy, sources)
    for rule in policy.rules:  # built lazily otherwise, by the first request that needs them
        _ = rule.conditions
    return Built(policy, vetted)


def admit(built: Built, check_accounts: AccountCheck) -> Policy | Rejected:
    """Step 2, then the verdict of ``build``: the first failure in the order of the steps."""
    try:
        check_accounts(built.policy)
    except ConfigError as exc:
        return Rejected(RejectReason.ACCOUNTS_REFUSED, str(exc))
    return built.vetted or built.policy


def prepare(sources: ReloadSources, check_accounts: AccountCheck) -> Policy | Rejected:
    """Every step in this process, and the rule index built. Blocking."""
    built = build(sources)
    result = built if isinstance(built, Rejected) else admit(built, check_accounts)
    if isinstance(result, Policy):
        result.candidates(Identity(source=IdentitySource.NKEY, principal="", subject=""))
    return result


def lint_loaded(policy: Policy, oidc_issuers: Sequence[str] | None = None) -> list[Warning]:
    """``lint`` with the demo identities' public keys flagged (``demo_identity``), unless the
    policy is the shipped demo policy alone, which ``authsvc demo`` serves; and, given the
    settings' exact OIDC issuers, rules on any other issuer (``issuer_not_configured``)."""
    return lint(policy, demo_keys=keys_to_flag(policy.sources), oidc_issuers=oidc_issuers)


def vet(policy: Policy, sources: ReloadSources) -> Rejected | None:
    """The optional gates (lint with ``reject_warnings``, test cases) for a loaded policy.

    Blocking. Startup runs it too, so a restart cannot activate a policy a reload would
    refuse.
    """
    if sources.reject_warnings:
        warnings = lint_loaded(policy, sources.oidc_issuers)
        if warnings:
            issues = [f"{w.rule_id}: {w.code}: {w.message}" for w in warnings]
            return Rejected(RejectReason.LINT_WARNINGS, summary(issues), tuple(issues))
    failures: list[str] = []
    empty = [path for path in sources.test_paths if path.is_dir() and not policy_files(path)]
    if empty:  # a gate that silently tests nothing is a misconfiguration, not a pass
        return Rejected(RejectReason.TEST_CASES_INVALID,
                        f"{empty[0]}: directory holds no *.yaml or *.yml test files")
    for path in _test_files(sources.test_paths):
        try:
            tests = read_test_file(path)  # its own ``policy:`` is not loaded: we test ours
        except PolicyError as exc:
            return Rejected(RejectReason.TEST_CASES_INVALID, str(exc),
                            tuple(problem.render() for problem in each(exc)))
        for case in tests.cases:
            result = run_case(case, policy, str(path))
            failures.extend(f"{path}: {case.name}: {failure}" for failure in result.failures)
    if failures:
        return Rejected(RejectReason.TEST_CASES_FAILED, summary(failures), tuple(failures))
    return None


def summary(issues: Sequence[str]) -> str:
    """The first ``MAX_ISSUES`` issues, joined, at most ``MAX_DETAIL`` characters."""
    shown = list(issues[:MAX_ISSUES])
    if len(issues) > MAX_ISSUES:
        shown.append(f"... and {len(issues) - MAX_ISSUES} more")
    return "; ".join(shown)[:MAX_DETAIL]


def _test_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(policy_files(path) if path.is_dir() else [path])
    return found


def policy_files(directory: Path) -> list[Path]:
    """A directory's files as ``policy.load`` selects them (``*.yaml``/``*.yml``, no dot)."""
    try:
        return sorted(child for child in directory.iterdir()
                      if child.suffix in POLICY_SUFFIXES and not child.name.startswith(".")
                      and child.is_file())
    except OSError:
        return []
