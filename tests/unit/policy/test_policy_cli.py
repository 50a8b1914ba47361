"""``authsvc policy ...``: exit codes and machine-readable output, over the example policies."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from authsvc.cli import build_parser, main
from authsvc.policy.testing import read_test_file

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
    assert report["warnings"] == []  # always present; lint runs only on a policy that loads


def test_check_warnings_fail_only_with_strict(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "policies/templates.yaml")
    assert main(["policy", "check", path]) == 0
    assert "[template_without_pattern]" in capsys.readouterr().out
    assert main(["policy", "check", "--strict", "--format", "json", path]) == 1
    warnings = _json(capsys)["warnings"]
    assert {w["code"] for w in warnings} == {"template_without_pattern"}  # type: ignore[index]
    # each located at its rule, as errors are
    assert [(w["rule"], w["file"], w["line"]) for w in warnings] == [  # type: ignore[index]
        ("region-readers", path, 14), ("loose-tenant", path, 20),
        ("per-tenant-guardrail", path, 26)]


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


# --- help examples -------------------------------------------------------------------------

def _policy_parsers() -> list[argparse.ArgumentParser]:
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    policy = top.choices["policy"]
    sub = next(a for a in policy._actions if isinstance(a, argparse._SubParsersAction))
    return [policy, *sub.choices.values()]


def _examples() -> list[tuple[str, str]]:
    """(command line, its comment) of every example in a policy help text; a line ending in
    a backslash continues on the next, a ``# comment`` below an example describes it."""
    found: list[tuple[str, str]] = []
    for parser in _policy_parsers():
        continuing = False
        for line in (parser.epilog or "").splitlines():
            text = line.strip()
            if continuing:
                found[-1] = (found[-1][0] + " " + text.removesuffix("\\").strip(), "")
            elif line.startswith("  authsvc "):
                found.append((text.removesuffix("\\").strip(), ""))
            elif text.startswith("# ") and found:
                found[-1] = (found[-1][0], text)
            continuing = text.endswith("\\")
    return found


EXAMPLES = _examples()


def test_every_policy_command_has_examples() -> None:
    for parser in _policy_parsers():
        assert any(line.startswith("  authsvc policy ")
                   for line in (parser.epilog or "").splitlines()), parser.prog


@pytest.mark.parametrize(("command", "comment"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_help_examples_run_as_described(command: str, comment: str,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    for name in [name for name in os.environ if name.startswith("AUTHSVC_")]:
        monkeypatch.delenv(name)
    argv = [arg for word in shlex.split(command)[1:]
            for arg in (sorted(glob.glob(word)) if "*" in word else [word])]
    expected = 1 if re.search(r"\bexits 1\b", comment) else 0
    assert main(argv) == expected, capsys.readouterr().err


def test_help_shows_no_markup_or_internal_names() -> None:
    for parser in _policy_parsers():
        text = parser.format_help()
        assert "``" not in text and "load_policy" not in text, parser.prog


# --- exit codes, stdout and stderr ---------------------------------------------------------

def _run(argv: list[str], capsys: pytest.CaptureFixture[str]
         ) -> tuple[int, dict[str, Any], str]:
    """Exit code, the JSON report on stdout, and stderr."""
    code = main([*argv, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _codes(report: dict[str, Any]) -> list[str]:
    return [error["code"] for error in report["errors"]]


LAMBDA = ROOT / "policies/examples/lambda.yaml"
LAMBDA_TESTS = ROOT / "policies/examples/tests/lambda.yaml"


@pytest.mark.parametrize(("argv", "exit_code", "codes"), [
    (["check", "/nonexistent"], 2, ["file_not_found"]),
    (["check", str(DATA / "errors/no_yaml")], 2, ["directory_empty"]),
    (["check", str(LAMBDA_TESTS)], 2, ["wrong_kind"]),
    (["check", str(DATA / "errors/misspelt_required_key.yaml")], 1,
     ["unknown_key", "missing_key"]),
    (["check", str(DATA / "errors/syntax_error.yaml")], 1, ["yaml_syntax"]),
    # two copies of one file: its defaults were hidden behind its duplicate rule id
    (["check", str(DATA / "errors/dup_both.yaml"), str(DATA / "errors/dup_both.yaml")], 1,
     ["duplicate_defaults", "duplicate_rule_id"]),
    (["test", "/nonexistent"], 2, ["file_not_found"]),
    (["test", str(LAMBDA)], 2, ["wrong_kind"]),
    (["test", str(DATA / "errors/no_yaml")], 2, ["directory_empty"]),
    (["explain", "/nonexistent"], 2, ["file_not_found"]),
    (["explain", str(LAMBDA)], 2, ["wrong_kind"]),
    (["explain", str(LAMBDA_TESTS), "--case", "writer publishes"], 2, ["case_not_found"]),
    (["diff", "/nonexistent", str(LAMBDA)], 2, ["file_not_found"]),
    (["diff", str(LAMBDA), str(LAMBDA), "--cases", str(LAMBDA)], 2, ["wrong_kind"]),
    (["diff", str(LAMBDA), str(LAMBDA), "--audit", str(LAMBDA)], 2, ["audit_record_invalid"]),
    (["diff", str(LAMBDA), str(DATA / "errors/bad_subject.yaml")], 1, ["subject_invalid"]),
], ids=lambda value: " ".join(value).replace(f"{ROOT}/", "") if isinstance(value, list)
   else str(value))
def test_file_and_usage_faults_exit_2_policy_problems_exit_1(
        argv: list[str], exit_code: int, codes: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, err = _run(["policy", *argv], capsys)
    assert (code, report["ok"], _codes(report)) == (exit_code, False, codes)
    assert len(err.splitlines()) == len(codes)  # each problem on stderr too


def test_problems_go_to_stderr_one_per_line_each_located(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "errors/misspelt_required_key.yaml"
    assert main(["policy", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line.split(": ")[0] for line in captured.err.splitlines()] == [f"{path}:7:7"] * 2


def test_unknown_case_lists_the_cases_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["policy", "explain", str(LAMBDA_TESTS), "--case", "nope"], capsys)
    names = [case.name for case in read_test_file(LAMBDA_TESTS).cases]
    assert (code, report["errors"][0]["cases"]) == (2, names)


def test_explain_finds_a_case_across_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    name = "a same-named role in another account is refused"
    assert main(["policy", "explain", str(LAMBDA_TESTS.parent), "--case", name,
                 "--format", "json"]) == 0
    (report,) = _json(capsys)  # type: ignore[misc]
    assert (report["file"], report["decision"]) == (str(LAMBDA_TESTS), "deny")


def test_test_takes_a_directory_like_policy_test_paths(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", "--format", "json", str(LAMBDA_TESTS.parent)]) == 0
    from_directory = _json(capsys)["cases"]
    assert main(["policy", "test", "--format", "json", *map(str, EXAMPLE_TESTS)]) == 0
    assert from_directory == _json(capsys)["cases"]


# --- diff ----------------------------------------------------------------------------------

def _widened(tmp_path: Path) -> Path:
    new = tmp_path / "lambda.yaml"
    new.write_text(LAMBDA.read_text().replace(
        'allow: ["orders.v2.created"]', 'allow: ["orders.v2.created", "orders.v2.deleted"]'))
    return new


def test_diff_cases_may_come_before_the_paths_repeat_and_name_directories(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _widened(tmp_path)
    assert main(["policy", "diff", "--cases", str(LAMBDA_TESTS), "--cases",
                 str(LAMBDA_TESTS.parent), str(LAMBDA), str(new), "--format", "json"]) == 0
    report = _json(capsys)
    cases = [c["case"] for c in report["identities"]]  # type: ignore[attr-defined]
    assert cases.count("orders lambda publishes orders.v2.created") == 2


@pytest.mark.parametrize(("widen", "flag", "exit_code"), [
    (False, True, 0), (True, True, 1), (True, False, 0)])
def test_diff_exit_code_reports_changes_only_when_asked(
        widen: bool, flag: bool, exit_code: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    new = _widened(tmp_path) if widen else LAMBDA
    argv = ["policy", "diff", str(LAMBDA), str(new), "--cases", str(LAMBDA_TESTS)]
    assert main([*argv, *(["--exit-code"] if flag else [])]) == exit_code


# --- accounts serve refuses ----------------------------------------------------------------

GRANTS = """\
apiVersion: authsvc/v1
kind: Policy
rules:
  - id: ops
    match: {source: nkey, subject: UOPS}
    grant: {account: OPS}
  - id: callout
    match: {source: nkey, subject: UAUTH}
    grant: {account: AUTH}
  - id: system
    match: {source: nkey, subject: USYS}
    grant: {account: $SYS}
"""


def _write(tmp_path: Path, settings: str = "") -> tuple[Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(GRANTS)
    config = tmp_path / "authsvc.yaml"
    config.write_text(settings + "policy: {paths: [policy.yaml]}\n")
    return policy, config


def test_check_refuses_grants_into_the_default_callout_and_system_accounts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, _ = _write(tmp_path)
    code, report, _ = _run(["policy", "check", str(policy)], capsys)
    located = [(e["code"], e["line"], e["column"]) for e in report["errors"]]
    assert (code, located) == (1, [("account_forbidden", 9, 22), ("account_forbidden", 12, 22)])


def test_check_with_settings_refuses_what_that_deployment_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The callout account is OPS here, so AUTH is an ordinary account; $SYS never is.
    _, config = _write(tmp_path, "nats: {callout_account: OPS}\n")
    code, report, _ = _run(["policy", "check", "-c", str(config)], capsys)
    assert (code, [e["line"] for e in report["errors"]]) == (1, [6, 12])
    assert _codes(report) == ["account_forbidden", "account_forbidden"]


def test_check_with_operator_settings_needs_a_signing_key_per_account(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, config = _write(tmp_path, "nats: {mode: operator, callout_account: CALLOUT}\n"
                                      "keys: {dir: keys}\n")
    (tmp_path / "keys/accounts").mkdir(parents=True)
    for name in ("OPS", "$SYS"):
        (tmp_path / f"keys/accounts/{name}.sk.nk").touch()
    code, report, _ = _run(["policy", "check", "-c", str(config), str(policy)], capsys)
    located = [(e["code"], e["line"]) for e in report["errors"]]
    assert (code, sorted(located)) == (1, [("account_forbidden", 12), ("account_unsigned", 9)])


def test_check_with_settings_takes_reject_warnings_as_strict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.yaml").write_text(
        (DATA / "policies/templates.yaml").read_text())
    config = tmp_path / "authsvc.yaml"
    config.write_text("policy: {paths: [policy.yaml], reject_warnings: true}\n")
    code, report, _ = _run(["policy", "check", "-c", str(config)], capsys)
    assert (code, report["ok"], report["errors"]) == (1, False, [])
    assert report["warnings"]


def test_check_with_unusable_settings_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["policy", "check", "-c", str(tmp_path / "none.yaml")], capsys)
    assert (code, _codes(report)) == (2, ["config_invalid"])


def test_check_without_paths_or_settings_is_a_usage_fault(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _run(["policy", "check"], capsys)
    assert (code, _codes(report)) == (2, ["no_paths"])


def test_diff_json_names_the_rules_an_audit_identity_cannot_decide(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rule = ("apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: edge\n    match: {source: "
            "oidc, issuer: 'https://idp.example', claims: {role: {equals: w}}}\n"
            "    grant: {account: APP, publish: {allow: [SUBJECT]}}\n")
    (tmp_path / "old.yaml").write_text(rule.replace("SUBJECT", "a.b"))
    (tmp_path / "new.yaml").write_text(rule.replace("SUBJECT", "a.c"))
    (tmp_path / "audit.jsonl").write_text(json.dumps(
        {"type": "decision", "decision": "allow",
         "identity": {"source": "oidc", "principal": "oidc:https://idp.example#w7",
                      "subject": "w7", "issuer": "https://idp.example"},
         "client": {"host": "10.0.0.8", "type": "nats", "kind": "Client"}}) + "\n")
    assert main(["policy", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"),
                 "--audit", str(tmp_path / "audit.jsonl"), "--format", "json"]) == 0
    (change,) = _json(capsys)["identities"]  # type: ignore[misc]
    undecided = [{"rule": "edge", "reads": ["claims.role"]}]
    assert (change["undecided_before"], change["undecided_after"]) == (undecided, undecided)


def test_junit_shows_unexercised_rules_failed_only_when_they_fail_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
        "  - id: used\n    match: {source: nkey, subject: UA}\n"
        "    grant: {account: APP, subscribe: {allow: [a.b]}}\n"
        "  - id: never-tested\n    match: {source: nkey, subject: UB}\n"
        "    grant: {account: APP, subscribe: {allow: [a.c]}}\n")
    tests = tmp_path / "t.yaml"
    tests.write_text("apiVersion: authsvc/v1\nkind: PolicyTest\npolicy: [p.yaml]\ncases:\n"
                     "  - name: a\n    identity: {source: nkey, subject: UA}\n"
                     "    expect: {decision: allow}\n")

    def suite(*flags: str) -> tuple[int, ElementTree.Element]:
        code = main(["policy", "test", "--format", "junit", *flags, str(tests)])
        return code, ElementTree.fromstring(capsys.readouterr().out)

    code, root = suite("--fail-on-unexercised")
    unexercised = [case for case in root if case.get("classname") == "unexercised rules"]
    assert (code, root.get("failures"), len(unexercised)) == (1, "1", 1)
    assert unexercised[0].find("failure") is not None
    code, root = suite()
    assert (code, root.get("failures"), root.get("skipped")) == (0, "0", "1")


def test_cases_into_a_refused_account_are_denied_as_serve_denies_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
        "  - id: into-callout\n    match: {source: nkey, subject: UA}\n"
        "    grant: {account: CALLOUT, subscribe: {allow: [a.b]}}\n")
    tests = tmp_path / "t.yaml"
    tests.write_text("apiVersion: authsvc/v1\nkind: PolicyTest\npolicy: [p.yaml]\ncases:\n"
                     "  - name: a\n    identity: {source: nkey, subject: UA}\n"
                     "    expect: {decision: deny, reason: account_forbidden}\n")
    settings = tmp_path / "authsvc.yaml"
    settings.write_text("nats: {callout_account: CALLOUT}\npolicy: {paths: [p.yaml]}\n")
    # CALLOUT is an ordinary account by default, and this deployment's callout account
    assert main(["policy", "test", str(tests)]) == 1
    assert main(["policy", "test", "-c", str(settings), str(tests)]) == 0
    capsys.readouterr()
    assert main(["policy", "explain", "-c", str(settings), "--format", "json", str(tests)]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert (report["decision"], report["reason"], report["rules"]) == (
        "deny", "account_forbidden", ["into-callout"])
