"""What ``authsvc policy`` reads besides policies: test files and their cases, audit logs,
and the deployment's account rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authsvc.policy.problems import InputFault, Problem

if TYPE_CHECKING:
    from authsvc.policy import Policy
    from authsvc.policy.cases import Case
    from authsvc.settings import Settings


class UnknownCase(InputFault):
    """``--case`` names no case; ``details["cases"]`` lists the ones there are."""

    code = "case_not_found"

    def __init__(self, name: str, files: Sequence[Path], cases: Sequence[str]) -> None:
        listed = "; ".join(repr(case) for case in cases)
        super().__init__(f"no case named {name!r}", file=", ".join(map(str, files)),
                         hint=f"the cases are: {listed}", details={"cases": list(cases)})


def test_cases(paths: Sequence[Path], name: str | None = None
               ) -> list[tuple[str, Case, Policy]]:
    """(file, case, its policy) for every case in the test files ``paths`` stand for
    (directories as ``policy.test_paths`` reads them); only the case ``name`` if given."""
    from authsvc.policy.load import policy_files
    from authsvc.policy.testing import load_test_file

    files = policy_files(paths, what="test")
    found: list[tuple[str, Case, Policy]] = []
    for file in files:
        tests, policy = load_test_file(file)
        found.extend((str(file), case, policy) for case in tests.cases)
    if name is None:
        return found
    chosen = [entry for entry in found if entry[1].name == name]
    if not chosen:
        raise UnknownCase(name, files, [case.name for _, case, _ in found])
    return chosen


def read_cases(paths: Sequence[Path]) -> list[Case]:
    """The cases of the test files ``paths`` stand for, without loading their policies."""
    from authsvc.policy.load import policy_files
    from authsvc.policy.testing import read_test_file

    if not paths:
        return []
    return [case for file in policy_files(paths, what="test")
            for case in read_test_file(file).cases]


def audit_records(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The JSON records of audit log files; an unreadable file or a line that is not JSON is
    an input fault there."""
    for path in paths:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise InputFault(f"cannot read audit log: {exc.strerror}", code="file_unreadable",
                             file=str(path)) from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise InputFault("not a JSON audit record", code="audit_record_invalid",
                                 file=str(path), line=number) from None
            if isinstance(record, dict):
                yield record


def deployment_settings(path: Path) -> Settings:
    """The settings file given with ``-c``; a policy or test file there is a usage fault that
    says where it goes, instead of a list of settings errors."""
    import yaml

    from authsvc.settings import load_settings

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        document = None  # load_settings reports it
    if isinstance(document, dict) and "apiVersion" in document and \
            document.get("kind") in ("Policy", "PolicyTest"):
        kind = document["kind"]
        raise InputFault(f"this is a {kind} file, not authsvc settings", code="wrong_kind",
                         file=str(path), hint="-c takes the settings file serve runs with "
                         "(e.g. /etc/authsvc/authsvc.yaml); "
                         + ("policy files go to --policy PATH or as PATH arguments"
                            if kind == "Policy" else "test files go as PATH arguments"))
    return load_settings(path)


def account_problems(policy: Policy, settings: Settings | None) -> tuple[list[Problem], str]:
    """What ``serve`` with ``settings`` would refuse about the accounts ``policy`` grants
    (without settings: grants into the default names AUTH, SYS, $SYS), each located at a
    grant's ``account``; and a note when something could not be checked here."""
    from authsvc.account_checks import DEFAULT_FORBIDDEN, forbidden_accounts, refused_grants

    forbidden = DEFAULT_FORBIDDEN if settings is None else forbidden_accounts(settings)
    hint = "nobody may be placed in the callout or system account"
    if settings is None:
        hint += ("; AUTH, SYS and $SYS are the default names: pass -c SETTINGS to check "
                 "against the deployment's own")
    found: list[tuple[str, Problem]] = [
        (rule_id, Problem(f"rule {rule_id!r} grants account {account!r}, which serve refuses",
                          code="account_forbidden", hint=hint))
        for rule_id, account in refused_grants(policy, forbidden)]
    note = ""
    if settings is not None and settings.nats.mode == "operator":
        missing, note = _unsigned(policy, settings.keys.dir, forbidden)
        found += missing
    return _located(policy, found), note


def _unsigned(policy: Policy, keys_dir: Path, forbidden: frozenset[str]
              ) -> tuple[list[tuple[str, Problem]], str]:
    """Operator mode: accounts without a signing key in ``keys_dir`` (names only: no seed
    is read), at the first rule that grants each; forbidden ones are reported as such."""
    from authsvc.account_checks import unsigned_accounts
    from authsvc.natsconf.keystore import KeyStore

    if not keys_dir.is_dir():
        return [], (f"note: key directory {keys_dir} not found here; signing keys for the "
                    "granted accounts were not checked")
    first: dict[str, str] = {}
    for rule in policy.rules:
        if rule.grant is not None:
            first.setdefault(rule.grant.account, rule.id)
    return [(first[account], Problem(
        f"no signing key for account {account!r} in {keys_dir}", code="account_unsigned",
        hint=f"run `authsvc keys init --dir {keys_dir} --mode operator --accounts "
             f"{account}`, then regenerate the nats-server config"))
        for account in unsigned_accounts(policy, KeyStore(keys_dir).signing_accounts())
        if account not in forbidden], ""


def _located(policy: Policy, found: Sequence[tuple[str, Problem]]) -> list[Problem]:
    from authsvc.policy.load import rule_locations

    if not found:
        return []
    where = rule_locations(policy, ("grant", "account"))
    located = []
    for rule_id, problem in found:
        at = where.get(rule_id)
        located.append(problem if at is None else Problem(
            problem.message, code=problem.code, file=at.file, line=at.line, column=at.column,
            hint=problem.hint))
    return located
