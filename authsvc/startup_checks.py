"""serve's startup refusals of a policy: one line per problem, each at its file:line:column.

At startup a refusal is read by whoever runs the service, who needs the place to fix, as
``authsvc policy check`` and ``nats-config`` name it. A reload's refusal keeps its short
summary (the log line and the ``policy.reload_rejected`` record): locating a problem reads
the policy files again, which the account check of a reload would do on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from authsvc.errors import ConfigError
from authsvc.policy import Policy
from authsvc.policy.load import rule_locations
from authsvc.policy.problems import MAX_RENDERED
from authsvc.policy.source import Location
from authsvc.policy_gates import (
    AccountCheck,
    PolicyRefused,
    Rejected,
    RejectReason,
    ReloadSources,
    lint_loaded,
    vet,
)
from authsvc.settings import Settings


def check_accounts(policy: Policy, settings: Settings, check: AccountCheck) -> None:
    """``check`` (the account check a reload applies); when it refuses, a ConfigError with
    each refused grant at its ``account``, in the words of ``nats-config``."""
    try:
        check(policy)
    except ConfigError:
        from authsvc.commands.policy_inputs import account_problems

        refused, _note = account_problems(policy, settings)
        if not refused:  # the check refused what the locator cannot place: its own words
            raise
        raise ConfigError("the policy grants accounts serve refuses:\n" + "\n".join(
            _capped([problem.render() for problem in refused]))) from None


def check_gates(policy: Policy, sources: ReloadSources) -> None:
    """The reload gates (``vet``), so a restart cannot activate what a reload refuses;
    raises ``PolicyRefused`` naming each problem on a line of its own."""
    rejected = vet(policy, sources)
    if rejected is not None:
        raise PolicyRefused(rejected, file=", ".join(policy.sources),
                            lines=_capped(_lines(policy, rejected, sources)))


def _lines(policy: Policy, rejected: Rejected, sources: ReloadSources) -> list[str]:
    if rejected.reason is not RejectReason.LINT_WARNINGS:
        return list(rejected.issues) or [rejected.detail]
    warnings = lint_loaded(policy, sources.oidc_issuers)
    where = rule_locations(policy)
    # The lines of `authsvc policy check`.
    return [f"{_at(where.get(w.rule_id), policy)}: warning: {w.rule_id}: {w.message} "
            f"[{w.code}]" for w in warnings] or [rejected.detail]


def _at(location: Location | None, policy: Policy) -> str:
    # None: the file changed since it was loaded; name the files at least.
    return ", ".join(policy.sources) if location is None else str(location)


def _capped(lines: Sequence[str]) -> list[str]:
    shown = list(lines[:MAX_RENDERED])
    if len(lines) > MAX_RENDERED:
        shown.append(f"... and {len(lines) - MAX_RENDERED} more")
    return shown
