"""Policy hot reload: candidates are checked off the loop, swapped whole, or refused and kept.

Real policy files in a temp dir, the real loader, lint and test runner, the composition
root's real account check and a real AuditLog; only the triggers are called directly (SIGHUP
through a real process is in tests/integration/test_policy_reload.py).
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.audit import AuditLog, FileSink
from authsvc.clock import SystemClock
from authsvc.minting import Mode
from authsvc.policy import Policy, load_policy
from authsvc.policy_reload import (
    ACTIVATED,
    REJECTED,
    PolicyRefused,
    PolicyReloader,
    Rejected,
    RejectReason,
    ReloadSources,
    Trigger,
    disk_revision,
    prepare,
    stamp,
)
from authsvc.server import PolicyHolder, _check_policy_accounts, build
from tests.support.deploy import Deployment

check_accounts = partial(_check_policy_accounts, mode=Mode.CONFIG, accounts={},
                         forbidden=frozenset({"AUTH"}))


def rule(rule_id: str, subject: str, account: str = "APP",
         subscribe: str = "orders.v2.>") -> dict[str, Any]:
    return {"id": rule_id, "match": {"source": "nkey", "subject": subject},
            "grant": {"account": account, "subscribe": {"allow": [subscribe]}}}


def write_policy(path: Path, *rules: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy",
                                    "rules": list(rules)}, sort_keys=False))


def write_cases(path: Path, subject: str, decision: str) -> None:
    case = {"name": f"{subject} is {decision}ed",
            "identity": {"source": "nkey", "subject": subject},
            "expect": {"decision": decision}}
    path.write_text(yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "PolicyTest",
                                    "policy": ["policy.yaml"], "cases": [case]}))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    write_policy(path, rule("alice", "UALICE"))
    return path


class Rig:
    """A reloader over ``policy_file`` with a real audit log, as ``server.build`` makes it."""

    def __init__(self, tmp: Path, sources: ReloadSources, interval: float = 0) -> None:
        self.audit_path = tmp / "audit.jsonl"
        self.audit = AuditLog(FileSink(self.audit_path, fsync=False), instance="test",
                              clock=SystemClock())
        self.holder = PolicyHolder(load_policy(sources.paths))
        self.reloader = PolicyReloader(self.holder, sources, audit=self.audit,
                                       check_accounts=check_accounts, interval=interval)

    def events(self, kind: str) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        lines = self.audit_path.read_bytes().splitlines()
        return [r for r in map(json.loads, lines) if r["type"] == kind]


@pytest.fixture
def rig(tmp_path: Path, policy_file: Path) -> Rig:
    return Rig(tmp_path, ReloadSources(paths=(policy_file,)))


def reason(result: Policy | Rejected) -> RejectReason:
    assert isinstance(result, Rejected), result
    return result.reason


# -- prepare: the steps a candidate must pass ---------------------------------------------

def test_a_valid_candidate_is_loaded(policy_file: Path) -> None:
    write_policy(policy_file, rule("alice", "UALICE"), rule("bob", "UBOB"))
    result = prepare(ReloadSources(paths=(policy_file,)), check_accounts)
    assert isinstance(result, Policy)
    assert [r.id for r in result.rules] == ["alice", "bob"]


@pytest.mark.parametrize("text", [
    "apiVersion: authsvc/v1\nkind: Policy\nrules: [\n",                      # YAML syntax
    "apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: x\n    match: {}\n",  # schema
    "apiVersion: authsvc/v1\nkind: Policy\nrulez: []\n",                     # unknown key
])
def test_a_broken_file_is_policy_invalid(policy_file: Path, text: str) -> None:
    policy_file.write_text(text)
    assert reason(prepare(ReloadSources(paths=(policy_file,)), check_accounts)) \
        is RejectReason.POLICY_INVALID


def test_a_missing_file_is_policy_invalid(tmp_path: Path) -> None:
    sources = ReloadSources(paths=(tmp_path / "gone.yaml",))
    assert reason(prepare(sources, check_accounts)) is RejectReason.POLICY_INVALID


def test_a_grant_into_the_callout_account_is_refused(policy_file: Path) -> None:
    write_policy(policy_file, rule("alice", "UALICE", account="AUTH"))
    assert reason(prepare(ReloadSources(paths=(policy_file,)), check_accounts)) \
        is RejectReason.ACCOUNTS_REFUSED


def test_lint_warnings_block_only_when_asked(policy_file: Path) -> None:
    write_policy(policy_file, rule("alice", "UALICE", subscribe=">"))  # account_wide_grant
    assert isinstance(prepare(ReloadSources(paths=(policy_file,)), check_accounts), Policy)
    strict = ReloadSources(paths=(policy_file,), reject_warnings=True)
    assert reason(prepare(strict, check_accounts)) is RejectReason.LINT_WARNINGS


def test_test_cases_run_against_the_candidate(tmp_path: Path, policy_file: Path) -> None:
    cases = tmp_path / "cases.yaml"
    write_cases(cases, "UALICE", "allow")
    sources = ReloadSources(paths=(policy_file,), test_paths=(cases,))
    assert isinstance(prepare(sources, check_accounts), Policy)
    write_policy(policy_file, rule("bob", "UBOB"))  # alice loses access
    assert reason(prepare(sources, check_accounts)) is RejectReason.TEST_CASES_FAILED


def test_test_directories_are_read_and_broken_test_files_refused(
        tmp_path: Path, policy_file: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    write_cases(cases / "a.yaml", "UALICE", "allow")
    write_cases(cases / "b.yaml", "UNOBODY", "deny")
    sources = ReloadSources(paths=(policy_file,), test_paths=(cases,))
    assert isinstance(prepare(sources, check_accounts), Policy)
    (cases / "c.yaml").write_text("apiVersion: authsvc/v1\nkind: PolicyTest\ncases: 3\n")
    assert reason(prepare(sources, check_accounts)) is RejectReason.TEST_CASES_INVALID


def test_an_empty_test_directory_is_refused_not_passed(tmp_path: Path, policy_file: Path) -> None:
    (tmp_path / "cases").mkdir()
    sources = ReloadSources(paths=(policy_file,), test_paths=(tmp_path / "cases",))
    assert reason(prepare(sources, check_accounts)) is RejectReason.TEST_CASES_INVALID


# -- the reloader: swap, keep, record ------------------------------------------------------

async def test_a_good_reload_swaps_and_records_activation(rig: Rig, policy_file: Path) -> None:
    before = rig.holder.current
    write_policy(policy_file, rule("alice", "UALICE"), rule("bob", "UBOB", account="OPS"))
    result = await rig.reloader.reload(Trigger.SIGNAL)
    assert isinstance(result, Policy)
    assert rig.holder.current is result
    assert (rig.reloader.activations, rig.reloader.rejections) == (1, 0)
    [event] = rig.events(ACTIVATED)
    assert event["trigger"] == "sighup"
    assert event["revision"] == result.revision
    assert event["previous_revision"] == before.revision
    assert event["rules"] == 2
    assert event["accounts_added"] == ["OPS"]


async def test_a_rejected_reload_keeps_the_last_good_policy(rig: Rig, policy_file: Path) -> None:
    before = rig.holder.current
    policy_file.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
    result = await rig.reloader.reload(Trigger.SIGNAL)
    assert reason(result) is RejectReason.POLICY_INVALID
    assert rig.holder.current is before
    assert (rig.reloader.activations, rig.reloader.rejections) == (0, 1)
    assert rig.reloader.last_rejected == result
    [event] = rig.events(REJECTED)
    assert event["reason"] == "policy_invalid"
    assert event["kept_revision"] == before.revision
    assert event["trigger"] == "sighup"
    assert rig.events(ACTIVATED) == []


async def test_reverting_a_rejected_change_clears_the_failure(rig: Rig,
                                                              policy_file: Path) -> None:
    good = policy_file.read_text()
    policy_file.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
    assert reason(await rig.reloader.reload(Trigger.SIGNAL)) is RejectReason.POLICY_INVALID
    assert rig.reloader.failing
    policy_file.write_text(good)  # the operator reverts the bad edit
    assert await rig.reloader.reload(Trigger.FILE_CHANGE) is None
    assert not rig.reloader.failing  # authsvc_policy_reload_failing goes back to 0
    assert len(rig.events(REJECTED)) == 1 and rig.events(ACTIVATED) == []


async def test_a_reverted_change_applied_again_is_rejected_again(rig: Rig,
                                                                 policy_file: Path) -> None:
    good, bad = policy_file.read_text(), "apiVersion: authsvc/v1\nkind: Policy\nrules: [\n"
    policy_file.write_text(bad)
    assert reason(await rig.reloader.reload(Trigger.FILE_CHANGE)) is RejectReason.POLICY_INVALID
    policy_file.write_text(good)
    assert await rig.reloader.reload(Trigger.FILE_CHANGE) is None and not rig.reloader.failing
    policy_file.write_text(bad)  # the same bad change, back again
    assert reason(await rig.reloader.reload(Trigger.FILE_CHANGE)) is RejectReason.POLICY_INVALID
    assert rig.reloader.failing and len(rig.events(REJECTED)) == 2


async def test_a_change_rejected_on_sighup_is_not_judged_again_by_the_watcher(
        rig: Rig, policy_file: Path) -> None:
    policy_file.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
    assert reason(await rig.reloader.reload(Trigger.SIGNAL)) is RejectReason.POLICY_INVALID
    assert await rig.reloader.reload(Trigger.FILE_CHANGE) is None  # same files, same verdict
    assert reason(await rig.reloader.reload(Trigger.SIGNAL)) is RejectReason.POLICY_INVALID
    assert rig.reloader.rejections == 2  # an operator's SIGHUP is always answered
    assert rig.reloader.failing


async def test_an_unchanged_policy_records_nothing(rig: Rig, policy_file: Path) -> None:
    before = rig.holder.current
    policy_file.touch()
    assert await rig.reloader.reload(Trigger.SIGNAL) is None
    assert rig.holder.current is before
    assert rig.events(ACTIVATED) == rig.events(REJECTED) == []


async def test_the_signal_handler_reloads(rig: Rig, policy_file: Path) -> None:
    write_policy(policy_file, rule("bob", "UBOB"))
    rig.reloader.on_signal()
    await _until(lambda: rig.reloader.activations == 1)
    [event] = rig.events(ACTIVATED)
    assert event["trigger"] == "sighup"


async def test_a_file_change_is_picked_up_once(tmp_path: Path, policy_file: Path) -> None:
    rig = Rig(tmp_path, ReloadSources(paths=(policy_file,)), interval=0.05)
    rig.reloader.start()
    try:
        write_policy(policy_file, rule("bob", "UBOB"))
        await _until(lambda: rig.reloader.activations == 1)
        assert [r.id for r in rig.holder.current.rules] == ["bob"]
        policy_file.write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
        await _until(lambda: rig.reloader.rejections == 1)
        await asyncio.sleep(0.5)  # ten more polls: the same broken file is not retried
        assert rig.reloader.rejections == 1
        assert [e["trigger"] for e in rig.events(ACTIVATED) + rig.events(REJECTED)] == \
            ["file_change", "file_change"]
    finally:
        await rig.reloader.aclose()


async def test_a_new_file_in_a_watched_directory_is_picked_up(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    write_policy(directory / "10-alice.yaml", rule("alice", "UALICE"))
    rig = Rig(tmp_path, ReloadSources(paths=(directory,)), interval=0.05)
    rig.reloader.start()
    try:
        write_policy(directory / ".20-bob.yaml.swp", rule("bob", "UBOB"))  # editor scratch
        write_policy(directory / "20-bob.yaml", rule("bob", "UBOB"))
        await _until(lambda: rig.reloader.activations == 1)
        assert [r.id for r in rig.holder.current.rules] == ["alice", "bob"]
    finally:
        await rig.reloader.aclose()


def test_disk_revision_matches_the_loaded_revision(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    write_policy(directory / "a.yaml", rule("alice", "UALICE"))
    write_policy(directory / "b.yml", rule("bob", "UBOB"))
    (directory / "notes.txt").write_text("not policy")
    paths = (directory,)
    assert disk_revision(paths) == load_policy(paths).revision
    before = stamp(paths)
    (directory / "notes.txt").write_text("still not policy")
    assert stamp(paths) == before


# -- startup runs the same gates ------------------------------------------------------------

def test_startup_refuses_a_policy_its_test_cases_reject(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    d.rules = [rule("alice", d.identity("alice").public_key)]
    write_cases(tmp_path / "cases.yaml", d.identity("bob").public_key, "allow")
    d.settings_extra = {"policy": {"test_paths": ["cases.yaml"]}}
    settings = d.write()
    with pytest.raises(PolicyRefused) as refused:
        build(settings)
    assert refused.value.reason is RejectReason.TEST_CASES_FAILED


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
