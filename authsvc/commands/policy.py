"""``authsvc policy check|test|explain|diff``: the policy engine the service runs, for people.

Every subcommand loads policies with the loader ``serve`` uses and decides with the same
``evaluate``; ``policy_output`` prints and picks the exit code, ``policy_inputs`` reads test
files, audit logs and the deployment's account rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authsvc.commands.common import FORMATTER
from authsvc.commands.policy_output import (
    EXIT_OK,
    EXIT_PROBLEM,
    emit,
    explanation,
    explanation_text,
    git_label,
    identity_explanation,
    junit,
    problem_record,
    public,
    reporting_problems,
)

if TYPE_CHECKING:
    from authsvc.policy import Policy
    from authsvc.settings import Settings

DESCRIPTION = """\
Check, test, explain and compare policy files with the loader and decision engine that
`authsvc serve` runs: what passes here is what the service enforces.

  check     validate policy files and warn about risky rules
  test      run test files: identities and the decision each must get
  explain   show how a test case, a token or a claims file is decided, rule by rule
  diff      what access changes between two versions of a policy

Exit status, for every subcommand: 0 clean; 1 a problem in a policy (an error, a failing
case, or what --strict, --fail-on-unexercised or --exit-code ask for); 2 a usage or file
fault (a path that does not exist, a directory without YAML files, the wrong kind of file,
a --case that names no case). Problems go to stderr as file:line:column: message, with a
hint; reports go to stdout."""

EPILOG = """\
examples:
  authsvc policy check policies/examples/
  authsvc policy test policies/examples/tests/
  authsvc policy explain policies/examples/tests/lambda.yaml \\
      --case "orders lambda publishes orders.v2.created"
  authsvc policy diff policies/examples/lambda.yaml policies/examples/ \\
      --cases policies/examples/tests/lambda.yaml

Policy files: docs/policy.md. Test files: docs/policy.md#testing-policies.
Run `authsvc policy SUBCOMMAND --help` for each subcommand's options and examples."""

CHECK_EPILOG = """\
examples:
  authsvc policy check policies/examples/
      # every *.yaml and *.yml file in the directory, combined as serve combines them
  authsvc policy check --strict --format json policies/examples/lambda.yaml
      # lint warnings fail too; a report for tools
  authsvc policy check -c deploy/container/authsvc.yaml policies/examples/
      # also what serve with these settings refuses about the accounts granted, and
      # rules on an issuer they do not configure (issuer_not_configured)

Every problem is printed, each with file:line:column and a hint. A grant into the callout or
system account is an error: without -c, into AUTH, SYS or $SYS (the default names); with -c,
into the accounts that deployment's serve refuses (nats.callout_account, and SYS in
operator mode, where an account without a signing key in keys.dir is an error too). With -c
and no paths, the settings' policy.paths are checked, and policy.reject_warnings acts as
--strict.

Exit status: 0 the policy loads; 1 an error in it, a refused account, or, with --strict, a
lint warning; 2 a path that does not exist, a directory without YAML files, a test file
given as a policy, or settings (-c) that do not load."""

TEST_EPILOG = """\
examples:
  authsvc policy test policies/examples/tests/
      # every test file in the directory, found as policy.test_paths finds them
  authsvc policy test --fail-on-unexercised --format junit policies/examples/tests/lambda.yaml
      # a JUnit report for CI; a rule no case matches fails the run

A test file (kind: PolicyTest) names its policy and lists cases: an identity, how it
connects, and the decision it must get (docs/policy.md#testing-policies). Cases are decided
as serve decides them: a grant into the callout or system account (AUTH, SYS, $SYS; with -c,
the deployment's) is a deny, account_forbidden. With --format junit, each rule no case
matches is a testcase too: failed with --fail-on-unexercised, skipped without.

Exit status: 0 every case passed; 1 a case failed, a rule no case matched (with
--fail-on-unexercised), or an error in a test or policy file; 2 a path that does not exist,
a directory without YAML files, or a policy file given as a test file."""

EXPLAIN_EPILOG = """\
examples:
  authsvc policy explain policies/examples/tests/okta.yaml
      # every case of the file
  authsvc policy explain policies/examples/tests/lambda.yaml \\
      --case "a same-named role in another account is refused"
  authsvc policy explain --format json policies/examples/tests/ \\
      --case "the same token over plain TCP is refused"
      # a directory: the case is looked up in all its test files
  authsvc policy explain -c policies/examples/explain/authsvc.yaml \\
      --claims policies/examples/explain/okta-alice.json --at 2026-03-02T10:00:00Z
      # a token's payload, read with the issuer settings serve uses; not verified
  authsvc policy explain --policy policies/examples/lambda.yaml \\
      --claims policies/examples/explain/lambda-caller.json
      # what `aws sts get-caller-identity` printed inside the function

Three inputs, one at a time:
  test files    each case writes down an identity and its connection (kind: PolicyTest);
                the case's expect is not checked (policy test does that)
  --claims FILE a JSON object whose signature is taken as given: a token's payload,
                checked and read as its issuer's block in -c SETTINGS says (audience,
                exp/nbf/iat at --at, lifetime, required claims; claims, groups_claim,
                provider), or an AWS caller identity ({"UserId", "Account", "Arn"};
                issuer sts.amazonaws.com)
  --token FILE  a real token or AWS proof (- reads standard input; never put a token on
                the command line), verified by the verifiers -c SETTINGS configure, at
                --at: the answer serve would give. An AWS proof bound to a connection
                nonce cannot be verified here. For example, on the deployment's host:
                  authsvc policy explain -c /etc/authsvc/authsvc.yaml --token - < token.jwt
With --token or --claims, the policy is --policy (repeatable) or the settings' policy.paths,
and --host, --type and --user describe the connection (default: 127.0.0.1, STANDARD, no
role); --at sets the time (ISO 8601, default now).

For each it shows the decision and the determining rules, each rule that did not match with
its first failed condition, the claims the rules read that the identity lacks, and the JWT
permissions of an allow; for a token or claims, also the identity and its attributes, and
when no identity is established, the verifier's reason (no rule is evaluated then).

Exit status: 0 explained, whatever the decision; 1 an error in a test or policy file; 2 a
path that does not exist, a policy file given as a test file, a --case that names no case
(the error lists the cases there are), an unreadable token or claims file, settings that do
not load, or an issuer or STS that cannot be reached for --token."""

DIFF_EPILOG = """\
examples:
  authsvc policy diff policies/examples/lambda.yaml policies/examples/ \\
      --cases policies/examples/tests/lambda.yaml
      # what the other example files add, and what the lambda test identities gain or lose
  authsvc policy diff --exit-code --cases policies/examples/tests/ \\
      policies/examples/lambda.yaml policies/examples/
      # as a CI gate: exits 1, as the other files add rules and change access

OLD and NEW are each policy files or directories, loaded as serve loads them. The report
lists rules added (+), removed (-) and changed (~), then every identity whose decision or
subjects change: the identities of the --cases test files and, with --audit, every identity
the audit log saw (one per principal, client host and connection type), decided now. Audit
records hold no token claims or groups: an identity that a rule on those could match is
listed as "not reconstructable" for that rule; cover such rules with cases.

Exit status: 0 compared, with or without differences; with --exit-code, 1 when anything
changed; 1 an error in a policy or test file; 2 a path that does not exist, a directory
without YAML files, or an unreadable audit log."""

FORMAT_HELP = "report format (default: text)"
# As nats-server names them; the test-case model (policy.cases) accepts the same four.
CONNECTION_TYPES = ["STANDARD", "WEBSOCKET", "MQTT", "LEAFNODE"]


def register(sub: Any) -> None:
    """Add ``policy`` and its subcommands."""
    parser = sub.add_parser("policy", help="check, test, explain and diff policies",
                            description=DESCRIPTION, epilog=EPILOG, formatter_class=FORMATTER)
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    check = _command(commands, "check", "validate and lint policy files", CHECK_EPILOG,
                     run_check, {"warnings": []})
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                       help="policy files or directories (default with -c: policy.paths)")
    check.add_argument("-c", "--config", type=Path, metavar="SETTINGS",
                       help="the deployment's settings file: refuse what its serve refuses")
    check.add_argument("--format", choices=["text", "json"], default="text", help=FORMAT_HELP)
    check.add_argument("--strict", action="store_true", help="fail on lint warnings too")
    test = _command(commands, "test", "run PolicyTest files", TEST_EPILOG, run_test)
    test.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                      help="test files, or directories of them")
    test.add_argument("--format", choices=["text", "json", "junit"], default="text",
                      help=FORMAT_HELP)
    test.add_argument("--fail-on-unexercised", action="store_true",
                      help="fail when some rule is matched by no case")
    test.add_argument("-c", "--config", type=Path, metavar="SETTINGS",
                      help="the deployment's settings: its callout and system accounts are "
                           "refused as serve refuses them (default: AUTH, SYS, $SYS)")
    explain = _command(commands, "explain", "show how an identity is decided, rule by rule",
                       EXPLAIN_EPILOG, run_explain)
    explain.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                         help="test files, or directories of them")
    explain.add_argument("--case", metavar="NAME", help="only the case of this name")
    asked = explain.add_mutually_exclusive_group()
    asked.add_argument("--token", type=Path, metavar="FILE",
                       help="a real token in FILE (- = stdin), verified as serve does; needs -c")
    asked.add_argument("--claims", type=Path, metavar="FILE",
                       help="a token payload or AWS caller identity (JSON), signature unchecked")
    explain.add_argument("-c", "--config", type=Path, metavar="SETTINGS",
                         help="the deployment's settings: issuers, STS, policy.paths, and the "
                              "accounts serve refuses (default: AUTH, SYS, $SYS)")
    explain.add_argument("--policy", action="append", type=Path, metavar="PATH",
                         help="policy file or directory (default: the settings' policy.paths);"
                              " repeat for more")
    explain.add_argument("--host", metavar="IP", help="client address (default 127.0.0.1)")
    explain.add_argument("--type", choices=CONNECTION_TYPES, dest="connection_type",
                         help="connection type (default STANDARD)")
    explain.add_argument("--user", metavar="USER",
                         help="CONNECT user, e.g. role:writer to ask for a role")
    explain.add_argument("--at", metavar="TIME", help="decide at this ISO 8601 time "
                         "(default now)")
    explain.add_argument("--format", choices=["text", "json"], default="text", help=FORMAT_HELP)
    diff = _command(commands, "diff", "what access changes from OLD to NEW", DIFF_EPILOG,
                    run_diff)
    diff.add_argument("old", type=Path, metavar="OLD", help="old policy file or directory")
    diff.add_argument("new", type=Path, metavar="NEW", help="new policy file or directory")
    diff.add_argument("--cases", action="append", type=Path, metavar="PATH",
                      help="a test file, or a directory of them, whose identities are "
                           "compared; repeat for more")
    diff.add_argument("--audit", action="append", type=Path, metavar="FILE",
                      help="an audit log file: also compare every identity seen there; "
                           "repeat for more")
    diff.add_argument("--exit-code", action="store_true",
                      help="exit 1 when anything changed, as git diff --exit-code does")
    diff.add_argument("--format", choices=["text", "json"], default="text", help=FORMAT_HELP)


def _command(commands: Any, name: str, summary: str, epilog: str, handler: Any,
             extra: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[:1].upper() + summary[1:] + ".",
        epilog=epilog, formatter_class=FORMATTER)
    parser.set_defaults(handler=reporting_problems(handler, extra))
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Load; then the accounts serve would refuse, then lint warnings."""
    from authsvc.commands.policy_inputs import account_problems
    from authsvc.policy.load import rule_locations
    from authsvc.policy_gates import lint_loaded

    settings, policy = _deployment(args.config, args.paths, "no policy paths given",
                                   "give policy files or directories, or -c SETTINGS")
    refused, note = account_problems(policy, settings)
    if note:
        print(note, file=sys.stderr)
    warnings = lint_loaded(policy, settings.identity.oidc.exact_issuers if settings else None)
    strict = args.strict or (settings is not None and settings.policy.reject_warnings)
    errors = [problem_record(problem) for problem in refused]
    failed = bool(errors) or (strict and bool(warnings))
    where = rule_locations(policy) if warnings else {}
    lines = [f"{_at(where.get(w.rule_id))}warning: {w.rule_id}: {w.message} [{w.code}]"
             for w in warnings]
    lines.append(f"{'failed' if failed else 'ok'}: {len(policy.rules)} rules from "
                 f"{len(policy.sources)} file(s), revision {policy.revision[:12]}"
                 f"{git_label(policy.git_revision)}, {len(errors)} error(s), "
                 f"{len(warnings)} warning(s)")
    for error in errors:
        print(error["text"], file=sys.stderr)
    data = {"ok": not failed, "revision": policy.revision, "git_revision": policy.git_revision,
            "rules": len(policy.rules), "errors": [public(error) for error in errors],
            "warnings": [{"code": w.code, "rule": w.rule_id, "message": w.message,
                          **_location(where.get(w.rule_id))} for w in warnings]}
    emit(args.format, data, "\n".join(lines))
    return EXIT_PROBLEM if failed else EXIT_OK


def _at(location: Any) -> str:
    """``file:line:column: `` of a rule, for a warning line; empty when unknown."""
    return f"{location.file}:{location.line}:{location.column}: " if location else ""


def _location(location: Any) -> dict[str, Any]:
    return {"file": location.file, "line": location.line, "column": location.column} \
        if location else {}


def run_test(args: argparse.Namespace) -> int:
    """Run the cases; report failures and unexercised rules."""
    from authsvc.policy.load import policy_files
    from authsvc.policy.testing import run_files

    suite = run_files(policy_files(args.paths, what="test"), _forbidden(args.config))
    failed = [case for case in suite.cases if not case.passed]
    if args.format == "junit":
        sys.stdout.write(junit(suite, unexercised_fail=args.fail_on_unexercised))
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
        emit(args.format, data, "\n".join(lines))
    unexercised = args.fail_on_unexercised and bool(suite.unexercised)
    return EXIT_PROBLEM if failed or unexercised else EXIT_OK


def run_explain(args: argparse.Namespace) -> int:
    """Decision, determining rules, failed conditions, missing claims, JWT permissions."""
    from authsvc.commands.policy_inputs import test_cases
    from authsvc.policy.problems import InputFault
    from authsvc.policy.testing import evaluate_case

    if args.token or args.claims:
        return _explain_identity(args)
    if not args.paths:
        raise InputFault("nothing to explain", code="no_paths",
                         hint="give test files, --claims FILE or --token FILE")
    only = [option for option, value in (
        ("--policy", args.policy), ("--host", args.host),
        ("--type", args.connection_type), ("--user", args.user), ("--at", args.at))
        if value is not None]
    if only:
        raise InputFault(f"{', '.join(only)} {'applies' if len(only) == 1 else 'apply'} to "
                         "--token and --claims only",
                         code="usage_invalid", hint="a test case states its own connection "
                         "and time (now:, connection:)")
    forbidden = _forbidden(args.config)
    reports = [explanation(file, case.name, evaluate_case(case, policy, forbidden))
               for file, case, policy in test_cases(args.paths, args.case)]
    emit(args.format, reports, "\n\n".join(explanation_text(report) for report in reports))
    return EXIT_OK


def _deployment(config: Path | None, paths: list[Path] | None, missing: str,
                hint: str) -> tuple[Settings | None, Policy]:
    """The settings of ``-c`` (if given) and the policy of ``paths``, else of the settings'
    ``policy.paths``; no path at all is a usage fault (``missing``, ``hint``)."""
    from authsvc.commands.policy_inputs import deployment_settings
    from authsvc.policy import load_policy
    from authsvc.policy.problems import InputFault

    settings = deployment_settings(config) if config else None
    chosen = paths or (settings.policy.paths if settings else [])
    if not chosen:
        raise InputFault(missing, code="no_paths", hint=hint)
    return settings, load_policy(chosen)


def _forbidden(config: Path | None) -> frozenset[str]:
    """The accounts serve refuses: those of the settings ``config``, else the defaults."""
    from authsvc.account_checks import DEFAULT_FORBIDDEN, forbidden_accounts
    from authsvc.commands.policy_inputs import deployment_settings

    return DEFAULT_FORBIDDEN if config is None else forbidden_accounts(
        deployment_settings(config))


def _explain_identity(args: argparse.Namespace) -> int:
    """``explain --token/--claims``: one identity against the deployment's policy."""
    import ipaddress

    from authsvc.account_checks import DEFAULT_FORBIDDEN, forbidden_accounts
    from authsvc.clock import SystemClock
    from authsvc.commands.policy_identity import from_claims, from_token, parse_time
    from authsvc.policy.cases import CaseConnection
    from authsvc.policy.problems import InputFault

    if args.paths or args.case:
        raise InputFault("test files and --case do not go with --token or --claims",
                         code="usage_invalid", hint="explain a test file, or one identity")
    if args.token and args.config is None:
        raise InputFault("--token needs -c SETTINGS", code="settings_required",
                         hint="the settings name the issuers and STS endpoints serve trusts")
    host = args.host or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputFault(f"--host {host!r} is not an IP address", code="usage_invalid",
                         hint="the client address nats-server reports, e.g. 10.0.3.7") from None
    settings, policy = _deployment(args.config, args.policy, "no policy to explain against",
                                   "give --policy PATH, or -c SETTINGS to use its policy.paths")
    now = parse_time(args.at) if args.at else SystemClock().now()
    request = CaseConnection(host=host, type=args.connection_type or "STANDARD",
                             user=args.user or "").build(now)
    asked = (from_token(args.token, settings, request, now) if args.token and settings
             else from_claims(args.claims, settings, now))
    forbidden = DEFAULT_FORBIDDEN if settings is None else forbidden_accounts(settings)
    report = identity_explanation(asked, policy, request, now, forbidden)
    emit(args.format, report, explanation_text(report))
    return EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    """Rules added/removed/changed, and per known identity what it gains or loses."""
    from authsvc.clock import SystemClock
    from authsvc.commands.policy_inputs import audit_records, read_cases
    from authsvc.policy import load_policy
    from authsvc.policy.diff import diff
    from authsvc.policy.seen import seen_identities

    cases = read_cases(args.cases or [])
    old, new = load_policy([args.old]), load_policy([args.new])
    seen = seen_identities(audit_records(args.audit or []), SystemClock().now())
    result = diff(old, new, cases, seen)
    lines = [f"{label} rule: {rule_id}" for label, ids in
             (("+", result.added), ("-", result.removed), ("~", result.changed))
             for rule_id in ids]
    for change in result.identities:
        # A case is named by its author; the principal says which identity it stands for.
        who = "" if change.principal in change.case else f" [{change.principal}]"
        lines.append(f"identity {change.case!r}{who}: {change.before} -> {change.after}")
        lines += [f"    + {entry}" for entry in change.gained]
        lines += [f"    - {entry}" for entry in change.lost]
    data = {"added": list(result.added), "removed": list(result.removed),
            "changed": list(result.changed),
            "identities": [{"case": c.case, "principal": c.principal,
                            "before": c.before, "after": c.after,
                            "gained": list(c.gained), "lost": list(c.lost),
                            "undecided_before": _undecided(c.undecided_before),
                            "undecided_after": _undecided(c.undecided_after)}
                           for c in result.identities]}
    emit(args.format, data, "\n".join(lines) or "no differences")
    return EXIT_PROBLEM if args.exit_code and not result.empty else EXIT_OK



def _undecided(rules: Any) -> list[dict[str, Any]]:
    """Rules an identity rebuilt from the audit log lacks the facts to decide."""
    return [{"rule": rule.rule_id, "reads": list(rule.reads)} for rule in rules]
