"""serve's startup refusals name each problem at its file:line:column, as the tools do.

The refusals themselves are the ones a reload applies (tests/unit/test_policy_reload.py);
here: where they point. ``nats-config`` and ``policy check`` are the reference, so serve's
lines are compared with theirs rather than with written-out text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.cli import main
from authsvc.policy_gates import PolicyRefused, RejectReason
from authsvc.server import build
from authsvc.settings import load_settings
from tests.support.deploy import Deployment

LOCATED = re.compile(r"^\S+\.yaml:\d+:\d+: ")


def _rule(rule_id: str, account: str, subscribe: str = "orders.v2.created") -> dict[str, Any]:
    return {"id": rule_id, "match": {"source": "nkey", "subject": f"U{rule_id.upper()}"},
            "grant": {"account": account, "subscribe": {"allow": [subscribe]}}}


def _deployment(tmp: Path, *rules: dict[str, Any], mode: str = "config",
                **policy: Any) -> Deployment:
    """Keys and settings for a good policy; then ``rules`` replace it on disk."""
    d = Deployment(tmp, mode=mode, rules=[_rule("good", "APP")])
    d.settings_extra = {"policy": policy}
    d.write()
    (tmp / "policy.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "authsvc/v1", "kind": "Policy", "rules": list(rules)}, sort_keys=False))
    return d


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


@pytest.mark.parametrize(("mode", "accounts"), [
    ("config", ["AUTH", "$SYS"]),  # never the callout or system account
    ("operator", ["OPS", "AUDITORS"]),  # no signing key for them
])
def test_serve_names_each_refused_grant_where_nats_config_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str,
        accounts: list[str]) -> None:
    d = _deployment(tmp_path, _rule("good", "APP"),
                    *(_rule(f"r{n}", account) for n, account in enumerate(accounts)), mode=mode)
    settings = str(d.settings_file)
    code, _, serve_err = _run(capsys, "serve", "-c", settings)
    assert code == 2
    tool_code, _, tool_err = _run(capsys, "nats-config", "-c", settings)
    assert tool_code == 2
    problems = serve_err[1:]
    assert problems == tool_err[1:]
    assert len(problems) == len(accounts)
    assert all(LOCATED.match(line) for line in problems), problems


def test_serve_names_each_lint_warning_where_policy_check_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _deployment(tmp_path, _rule("a", "APP", "orders.>"), _rule("b", "APP", "billing.>"),
                    reject_warnings=True)
    code, _, serve_err = _run(capsys, "serve", "-c", str(d.settings_file))
    assert code == 2
    check_code, check_out, _ = _run(capsys, "policy", "check", "-c", str(d.settings_file))
    assert check_code == 1
    problems = serve_err[1:]
    assert problems == check_out[:-1]  # its last line is the summary
    assert len(problems) >= 2
    assert all(LOCATED.match(line) for line in problems), problems


def test_serve_names_each_failing_test_case_on_a_line_of_its_own(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    d = _deployment(tmp_path, _rule("a", "APP"), test_paths=[str(cases)])
    cases.write_text(yaml.safe_dump({
        "apiVersion": "authsvc/v1", "kind": "PolicyTest", "policy": ["policy.yaml"],
        "cases": [{"name": f"{who} is allowed", "identity": {"source": "nkey", "subject": who},
                   "expect": {"decision": "allow"}} for who in ("UBOB", "UCAROL")]}))
    with pytest.raises(PolicyRefused) as refused:
        build(load_settings(d.settings_file))
    assert refused.value.reason is RejectReason.TEST_CASES_FAILED
    problems = str(refused.value).splitlines()[1:]
    assert len(problems) == 2
    assert all(line.startswith(f"{cases}: ") for line in problems), problems
