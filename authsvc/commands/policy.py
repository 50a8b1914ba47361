"""``authsvc policy check|test|explain|diff``: the policy engine the service runs, for people.

Every subcommand loads policies with ``policy.load_policy`` and decides with ``policy.explain``
/ ``policy.evaluate``, exactly as ``authsvc serve`` does. Exit codes: 0 fine, 1 the policy or
its tests failed (or, with ``--strict``, lint warnings), 2 a usage or file fault.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from authsvc.commands.common import FORMATTER
from authsvc.errors import PolicyError

EPILOG = """\
examples:
  authsvc policy check policies/                       schema, semantics and lint warnings
  authsvc policy test policies/examples/tests/*.yaml   run PolicyTest cases (CI)
  authsvc policy explain policies/examples/tests/lambda.yaml --case "writer publishes"
  authsvc policy diff old/ new/ --cases policies/examples/tests/*.yaml

Policy format: docs/policy.md. Test file format: docs/policy.md#testing-policies."""


def register(sub: Any) -> None:
    """Add ``policy`` and its subcommands."""
    parser = sub.add_parser("policy", help="check, test, explain and diff policies",
                            description=__doc__, epilog=EPILOG, formatter_class=FORMATTER)
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser("check", help="validate and lint policy files")
    check.add_argument("paths", nargs="+", type=Path, help="policy files or directories")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--strict", action="store_true", help="fail on lint warnings too")
    check.set_defaults(handler=run_check)
    test = commands.add_parser("test", help="run PolicyTest case files")
    test.add_argument("files", nargs="+", type=Path, help="kind: PolicyTest YAML files")
    test.add_argument("--format", choices=["text", "json", "junit"], default="text")
    test.add_argument("--fail-on-unexercised", action="store_true",
                      help="fail when some rule is matched by no case")
    test.set_defaults(handler=run_test)
    explain = commands.add_parser("explain", help="show how one case is decided")
    explain.add_argument("file", type=Path, help="a PolicyTest file (its policy and cases)")
    explain.add_argument("--case", help="case name (default: every case)")
    explain.add_argument("--format", choices=["text", "json"], default="text")
    explain.set_defaults(handler=run_explain)
    diff = commands.add_parser("diff", help="what access changes from OLD to NEW")
    diff.add_argument("old", type=Path, help="old policy file or directory")
    diff.add_argument("new", type=Path, help="new policy file or directory")
    diff.add_argument("--cases", nargs="*", type=Path, default=[],
                      help="PolicyTest files whose identities are compared")
    diff.add_argument("--audit", nargs="*", type=Path, default=[],
                      help="audit log files: also compare every identity seen there "
                           "(without token claims: see docs/policy.md)")
    diff.add_argument("--format", choices=["text", "json"], default="text")
    diff.set_defaults(handler=run_diff)


def run_check(args: argparse.Namespace) -> int:
    """Load (errors exit 1 with file:line:col and a hint), then list lint warnings."""
    from authsvc.policy import load_policy
    from authsvc.policy.lint import lint

    try:
        policy = load_policy(args.paths)
    except PolicyError as exc:
        error = {"file": exc.file, "line": exc.line, "column": exc.column,
                 "message": exc.message, "hint": exc.hint}
        _emit(args.format, {"ok": False, "errors": [error], "warnings": []}, exc.render())
        return 1
    warnings = lint(policy)
    lines = [f"warning: {w.rule_id}: {w.message} [{w.code}]" for w in warnings]
    lines.append(f"ok: {len(policy.rules)} rules from {len(policy.sources)} file(s), "
                 f"revision {policy.revision[:12]}{_git_label(policy.git_revision)}, "
                 f"{len(warnings)} warning(s)")
    data = {"ok": True, "revision": policy.revision, "git_revision": policy.git_revision,
            "rules": len(policy.rules), "errors": [],
            "warnings": [{"code": w.code, "rule": w.rule_id, "message": w.message}
                         for w in warnings]}
    _emit(args.format, data, "\n".join(lines))
    return 1 if args.strict and warnings else 0


def run_test(args: argparse.Namespace) -> int:
    """Run the cases; report failures and unexercised rules."""
    from authsvc.policy.testing import run_files

    suite = run_files(args.files)
    failed = [case for case in suite.cases if not case.passed]
    if args.format == "junit":
        sys.stdout.write(_junit(suite))
    else:
        lines = [f"{'ok  ' if c.passed else 'FAIL'} {c.file}: {c.name}"
                 + "".join(f"\n       {f}" for f in c.failures) for c in suite.cases]
        if suite.unexercised:
            lines.append(f"rules no case matched: {', '.join(suite.unexercised)}")
        lines.append(f"{len(suite.cases) - len(failed)} passed, {len(failed)} failed")
        data = {"passed": len(suite.cases) - len(failed), "failed": len(failed),
                "unexercised": list(suite.unexercised),
                "cases": [{"file": c.file, "name": c.name, "failures": list(c.failures),
                           "matched": list(c.matched)} for c in suite.cases]}
        _emit(args.format, data, "\n".join(lines))
    unexercised = args.fail_on_unexercised and bool(suite.unexercised)
    return 1 if failed or unexercised else 0


def run_explain(args: argparse.Namespace) -> int:
    """Decision, determining rules, failed conditions, missing claims, JWT permissions."""
    from authsvc.policy.testing import evaluate_case, load_test_file

    tests, policy = load_test_file(args.file)
    cases = [case for case in tests.cases if args.case in (None, case.name)]
    if not cases:
        print(f"authsvc: error: no case named {args.case!r} in {args.file}", file=sys.stderr)
        return 2
    reports = [_explanation(case.name, evaluate_case(case, policy)) for case in cases]
    _emit(args.format, reports, "\n\n".join(_explain_text(report) for report in reports))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Rules added/removed/changed, and per known identity what it gains or loses."""
    from authsvc.clock import SystemClock
    from authsvc.policy import load_policy
    from authsvc.policy.diff import diff
    from authsvc.policy.seen import seen_identities
    from authsvc.policy.testing import load_test_file

    cases = [case for path in args.cases for case in load_test_file(path)[0].cases]
    seen = seen_identities(_audit_records(args.audit), SystemClock().now())
    result = diff(load_policy([args.old]), load_policy([args.new]), cases, seen)
    lines = [f"{label} rule: {rule_id}" for label, ids in
             (("+", result.added), ("-", result.removed), ("~", result.changed))
             for rule_id in ids]
    for change in result.identities:
        lines.append(f"identity {change.case!r}: {change.before} -> {change.after}")
        lines += [f"    + {entry}" for entry in change.gained]
        lines += [f"    - {entry}" for entry in change.lost]
    data = {"added": list(result.added), "removed": list(result.removed),
            "changed": list(result.changed),
            "identities": [{"case": c.case, "before": c.before, "after": c.after,
                            "gained": list(c.gained), "lost": list(c.lost)}
                           for c in result.identities]}
    _emit(args.format, data, "\n".join(lines) or "no differences")
    return 0


def _explanation(name: str, evaluation: Any) -> dict[str, Any]:
    from authsvc.domain import Allow
    from authsvc.minting import permission_claims

    decision = evaluation.decision
    report: dict[str, Any] = {"case": name, "revision": evaluation.revision}
    if isinstance(decision, Allow):
        grant = decision.grant
        report.update(decision="allow", account=grant.account, rules=list(grant.rule_ids),
                      ttl_seconds=int(grant.ttl.total_seconds()),
                      permissions=permission_claims(grant.permissions))
    else:
        report.update(decision="deny", reason=str(decision.reason),
                      rules=list(decision.rule_ids), detail=decision.detail)
    report["matched"] = list(evaluation.matched_rule_ids)
    report["not_matched"] = [{"rule": t.rule_id, "failed": t.failed[0], "all_failed": list(
        t.failed)} for t in evaluation.rules if not t.matched]
    report["missing_claims"] = sorted({c for t in evaluation.rules for c in t.missing})
    return report


def _explain_text(report: dict[str, Any]) -> str:
    head = (f"case {report['case']!r}: {report['decision']} "
            + (report["account"] if report["decision"] == "allow" else report["reason"]))
    lines = [head, f"  determining rules: {', '.join(report['rules']) or '-'}",
             f"  matched: {', '.join(report['matched']) or '-'}"]
    lines += [f"  not matched: {t['rule']} (first failed: {t['failed']})"
              for t in report["not_matched"]]
    if report["missing_claims"]:
        lines.append(f"  missing claims: {', '.join(report['missing_claims'])}")
    if report["decision"] == "allow":
        lines.append(f"  ttl: {report['ttl_seconds']}s")
        lines.append("  jwt permissions: " + json.dumps(report["permissions"], sort_keys=True))
    return "\n".join(lines)


def _junit(suite: Any) -> str:
    root = ElementTree.Element("testsuite", name="authsvc policy test",
                               tests=str(len(suite.cases)),
                               failures=str(sum(not c.passed for c in suite.cases)))
    for case in suite.cases:
        element = ElementTree.SubElement(root, "testcase", classname=case.file, name=case.name)
        if not case.passed:
            failure = ElementTree.SubElement(element, "failure", message=case.failures[0])
            failure.text = "\n".join(case.failures)
    return ElementTree.tostring(root, encoding="unicode") + "\n"


def _emit(fmt: str, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if fmt == "json" else text)


def _git_label(git_revision: str) -> str:
    """`` (git abc123def456)`` or `` (git abc123def456+dirty)``; empty outside git."""
    if not git_revision:
        return ""
    dirty = "+dirty" if git_revision.endswith("+dirty") else ""
    return f" (git {git_revision[:12]}{dirty})"


def _audit_records(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The JSON records of audit log files; a line that is not JSON is a PolicyError there."""
    for path in paths:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise PolicyError(f"cannot read audit log: {exc.strerror}", file=str(path)) from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise PolicyError("not a JSON audit record", file=str(path),
                                  line=number) from None
            if isinstance(record, dict):
                yield record
