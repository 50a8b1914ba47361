"""``authsvc policy ...``: exit codes and machine-readable output, over the example policies."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from authsvc.cli import main

ROOT = Path(__file__).parents[3]
EXAMPLE_TESTS = sorted((ROOT / "policies" / "examples" / "tests").glob("*.yaml"))
DATA = ROOT / "tests" / "data" / "policy"


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_example_policies_pass_their_tests_and_every_rule_is_exercised(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert len(EXAMPLE_TESTS) >= 6
    code = main(["policy", "test", "--fail-on-unexercised", "--format", "json",
                 *map(str, EXAMPLE_TESTS)])
    report = _json(capsys)
    assert (code, report["failed"], report["unexercised"]) == (0, 0, [])


def test_a_failing_case_exits_1_and_junit_names_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "policies/examples/tests/lambda.yaml").read_text()
                      .replace("../lambda.yaml", str(ROOT / "policies/examples/lambda.yaml"))
                      .replace("      can_publish: [orders.v2.created]\n", "")
                      .replace("cannot_publish: [orders.v2.deleted",
                               "can_publish: [orders.v2.deleted"))
    assert main(["policy", "test", "--format", "junit", str(broken)]) == 1
    suite = ElementTree.fromstring(capsys.readouterr().out)
    failed = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failed == ["orders lambda publishes orders.v2.created"]


def test_check_reports_a_located_error_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "check", "--format", "json", str(DATA / "errors/bad_subject.yaml")])
    report = _json(capsys)
    error = report["errors"][0]  # type: ignore[index]
    assert (code, report["ok"], error["line"], error["column"]) == (1, False, 11, 13)
    assert error["hint"]


def test_check_warnings_fail_only_with_strict(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "policies/templates.yaml")
    assert main(["policy", "check", path]) == 0
    assert "[template_without_pattern]" in capsys.readouterr().out
    assert main(["policy", "check", "--strict", "--format", "json", path]) == 1
    codes = {w["code"] for w in _json(capsys)["warnings"]}  # type: ignore[attr-defined]
    assert codes == {"template_without_pattern"}


def test_explain_shows_failed_conditions_and_missing_claims(
        capsys: pytest.CaptureFixture[str]) -> None:
    file = str(ROOT / "policies/examples/tests/okta.yaml")
    assert main(["policy", "explain", file, "--format", "json",
                 "--case", "an acme user reads acme orders only"]) == 0
    (report,) = _json(capsys)  # type: ignore[misc]
    assert report["decision"] == "allow"
    assert report["permissions"]["sub"]["allow"][1] == "tenants.acme.orders.>"
    assert {t["rule"] for t in report["not_matched"]} == {"okta-block-contractors"}
    assert main(["policy", "explain", file, "--case", "nope"]) == 2


def test_diff_names_gained_subjects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ROOT / "policies/examples/lambda.yaml"
    new = tmp_path / "lambda.yaml"
    new.write_text(old.read_text().replace('allow: ["orders.v2.created"]',
                                           'allow: ["orders.v2.created", "orders.v2.deleted"]'))
    assert main(["policy", "diff", str(old), str(new), "--format", "json", "--cases",
                 str(ROOT / "policies/examples/tests/lambda.yaml")]) == 0
    report = _json(capsys)
    assert report["changed"] == ["lambda-orders-writer"]
    gained = {g for c in report["identities"] for g in c["gained"]}  # type: ignore[attr-defined]
    assert gained == {"pub allow orders.v2.deleted"}
