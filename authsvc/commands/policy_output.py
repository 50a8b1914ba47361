"""What ``authsvc policy`` prints: reports on stdout, problems on stderr, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree

from authsvc.errors import AuthsvcError, PolicyError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
_OTHER_ISSUER = frozenset({"source", "issuer"})

Handler = Callable[[Any], int]


def reporting_problems(handler: Handler, extra: dict[str, Any] | None = None) -> Handler:
    """Run ``handler``; a fault becomes its problems on stderr (and, with ``--format json``,
    an ``{"ok": false, "errors": [...]}`` report on stdout, plus the keys of ``extra`` that
    the command's report always has) and exit 2 for a usage or file fault, 1 for a problem
    in a policy or test file."""
    def run(args: Any) -> int:
        try:
            return handler(args)
        except PolicyError as exc:
            return fail(args.format, _problems(exc), extra)
        except AuthsvcError as exc:  # bad settings given with -c
            return fail(args.format, [{"code": "config_invalid", "file": "", "line": 0,
                                       "column": 0, "message": str(exc), "hint": "",
                                       "text": f"authsvc: error: {exc}", "input": True}],
                        extra)
    return run


def fail(fmt: str, errors: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None
         ) -> int:
    """Print ``errors`` (see ``problem_record``); the exit code they call for."""
    for error in errors:
        print(error["text"], file=sys.stderr)
    if fmt == "json":
        emit(fmt, {**(extra or {}), "ok": False,
                   "errors": [public(error) for error in errors]}, "")
    return EXIT_USAGE if all(error["input"] for error in errors) else EXIT_PROBLEM


def problem_record(problem: PolicyError) -> dict[str, Any]:
    """One problem as a report entry, with its text and whether it is an input fault."""
    from authsvc.policy.problems import InputFault, Problem, code_of

    record = {"code": code_of(problem), "file": problem.file, "line": problem.line,
              "column": problem.column, "message": problem.message, "hint": problem.hint,
              "text": problem.render() if problem.file else _unlocated(problem),
              "input": isinstance(problem, InputFault)}
    if isinstance(problem, Problem):
        record.update(problem.details)
    return record


def _unlocated(problem: PolicyError) -> str:
    hint = f" (hint: {problem.hint})" if problem.hint else ""
    return f"authsvc: error: {problem.message}{hint}"


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A problem record as ``--format json`` shows it."""
    return {key: value for key, value in record.items() if key not in ("text", "input")}


def _problems(exc: PolicyError) -> list[dict[str, Any]]:
    from authsvc.policy.problems import each

    return [problem_record(problem) for problem in each(exc)]


def emit(fmt: str, data: Any, text: str) -> None:
    """The report: ``data`` as JSON, or ``text``."""
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
    elif text:
        print(text)


def git_label(git_revision: str) -> str:
    """`` (git abc123def456)`` or `` (git abc123def456+dirty)``; empty outside git."""
    if not git_revision:
        return ""
    dirty = "+dirty" if git_revision.endswith("+dirty") else ""
    return f" (git {git_revision[:12]}{dirty})"


def explanation(file: str, name: str, evaluation: Any, decision: Any = None) -> dict[str, Any]:
    """One explained case as a report entry; ``decision``, when given, is what the service
    makes of the engine's (an allow into a refused account is denied)."""
    from authsvc.domain import Allow
    from authsvc.minting import permission_claims

    decision = evaluation.decision if decision is None else decision
    report: dict[str, Any] = {"file": file, "case": name, "revision": evaluation.revision}
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
    # Claims a rule for another source or issuer reads are not missing from this identity.
    report["missing_claims"] = sorted({c for t in evaluation.rules
                                       if not _OTHER_ISSUER.intersection(t.failed)
                                       for c in t.missing})
    return report


def identity_explanation(asked: Any, policy: Any, request: Any, now: Any,
                         forbidden: frozenset[str]) -> dict[str, Any]:
    """``explain --token/--claims``: the identity, then the case report of it; when no
    identity was established, the verifier's deny and no rule (as ``serve`` decides)."""
    from authsvc.commands.policy_identity import identity_record
    from authsvc.domain import Deny
    from authsvc.policy import explain, refuse_forbidden

    outcome = asked.outcome
    head = {"input": asked.kind, "verified": asked.verified}
    if isinstance(outcome, Deny):
        return {"file": asked.file, "case": None, "revision": policy.revision, **head,
                "identity": None, "stage": "identity", "decision": "deny",
                "reason": str(outcome.reason), "detail": outcome.detail, "rules": [],
                "matched": [], "not_matched": [], "missing_claims": []}
    evaluation = explain(outcome, request, policy, now)
    decision = refuse_forbidden(evaluation.decision, forbidden)
    report = explanation(asked.file, "", evaluation, decision)
    report.update(head, case=None, identity=identity_record(outcome), stage="policy",
                  unmapped_claims=[c for c in report["missing_claims"] if c in asked.raw])
    return report


def explanation_text(report: dict[str, Any]) -> str:
    """An explained case, token or claims file for people."""
    what = (f"case {report['case']!r}" if report.get("case") is not None
            else f"{report['input']} {report['file']}")
    head = (f"{what}: {report['decision']} "
            + (report["account"] if report["decision"] == "allow" else report["reason"]))
    lines = [head]
    identity = report.get("identity")
    if report.get("stage") == "identity":
        lines.append(f"  identity not established: {report['detail']}")
        lines.append("  no rule was evaluated")
        return "\n".join(lines)
    if identity is not None:
        verified = "verified" if report["verified"] else "signature NOT verified"
        lines.append(f"  identity: {identity['principal']} ({verified})")
        lines.append(f"    source {identity['source']}, subject {identity['subject']}, "
                     f"issuer {identity['issuer'] or '-'}, expires "
                     f"{identity['expires_at'] or '-'}")
        lines += [f"    {key}: {json.dumps(value)}"
                  for key, value in identity["attributes"].items()]
    if report["decision"] == "deny" and report.get("detail"):
        lines.append(f"  detail: {report['detail']}")
    lines += [f"  policy revision: {report['revision'][:12]}",
              f"  determining rules: {', '.join(report['rules']) or '-'}",
              f"  matched: {', '.join(report['matched']) or '-'}"]
    lines += [f"  not matched: {t['rule']} (first failed: {t['failed']})"
              for t in report["not_matched"]]
    if report["missing_claims"]:
        lines.append(f"  missing claims: {', '.join(report['missing_claims'])}")
    if report.get("unmapped_claims"):
        lines.append(f"    in the token but not mapped by its issuer's settings: "
                     f"{', '.join(report['unmapped_claims'])} (declare them under the "
                     "issuer's claims: in -c SETTINGS)")
    if report["decision"] == "allow":
        lines.append(f"  ttl: {report['ttl_seconds']}s")
        lines.append("  jwt permissions: " + json.dumps(report["permissions"], sort_keys=True))
    return "\n".join(lines)


def junit(suite: Any, *, unexercised_fail: bool = False) -> str:
    """A test run as a JUnit XML document. Each rule no case matched is a testcase of its
    own, failed with ``unexercised_fail`` (``--fail-on-unexercised``) and skipped otherwise,
    so a CI dashboard shows why the run failed."""
    rules = list(suite.unexercised)
    failures = sum(not c.passed for c in suite.cases) + (len(rules) if unexercised_fail else 0)
    root = ElementTree.Element("testsuite", name="authsvc policy test",
                               tests=str(len(suite.cases) + len(rules)),
                               failures=str(failures),
                               skipped=str(0 if unexercised_fail else len(rules)))
    for case in suite.cases:
        element = ElementTree.SubElement(root, "testcase", classname=case.file, name=case.name)
        if not case.passed:
            failure = ElementTree.SubElement(element, "failure", message=case.failures[0])
            failure.text = "\n".join(case.failures)
    for rule in rules:
        element = ElementTree.SubElement(root, "testcase", classname="unexercised rules",
                                         name=f"rule {rule} is matched by some case")
        message = f"no case matches rule {rule!r}"
        ElementTree.SubElement(element, "failure" if unexercised_fail else "skipped",
                               message=message)
    return ElementTree.tostring(root, encoding="unicode") + "\n"
