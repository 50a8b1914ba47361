"""A reload's candidate built in a child process and taken in on the event loop in steps.

Real policy files, a real child process (``python -c ...policy_worker.child``), the real
gates; only failures of the child are staged by running another command in its place.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from authsvc.domain import Identity, IdentitySource
from authsvc.minting import Mode
from authsvc.policy import Policy, load_policy
from authsvc.policy_gates import Built, Rejected, RejectReason, ReloadSources, prepare
from authsvc.policy_reload import PolicyReloader, Trigger
from authsvc.policy_worker import build_elsewhere, retire
from authsvc.server import _check_policy_accounts
from tests.unit.test_policy_reload import Rig, reason, rule, write_cases, write_policy

check_accounts = partial(_check_policy_accounts, mode=Mode.CONFIG, accounts={},
                         forbidden=frozenset({"AUTH"}))


def fleet(count: int, account: str = "APP") -> list[dict[str, Any]]:
    return [rule(f"svc-{i}", f"UKEY{i}", account=f"{account}{i % 3}") for i in range(count)]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    write_policy(directory / "a.yaml", *fleet(120)[:60])
    write_policy(directory / "b.yaml", *fleet(120)[60:])
    return directory


async def test_the_child_builds_what_this_process_would(policy_dir: Path) -> None:
    built = await build_elsewhere(ReloadSources(paths=(policy_dir,)))
    assert isinstance(built, Built) and built.vetted is None
    here = load_policy([policy_dir])
    assert built.policy.rules == here.rules
    assert (built.policy.revision, built.policy.sources, built.policy.defaults) == (
        here.revision, here.sources, here.defaults)
    someone = Identity(IdentitySource.NKEY, "nkey:UKEY7", "UKEY7")
    assert [r.id for r in built.policy.candidates(someone)] == ["svc-7"]


async def test_unchanged_files_send_nothing_back(policy_dir: Path) -> None:
    revision = load_policy([policy_dir]).revision
    assert await build_elsewhere(ReloadSources(paths=(policy_dir,)),
                                 unless_revision=revision) is None


async def test_the_child_reports_each_gate(tmp_path: Path, policy_dir: Path) -> None:
    (policy_dir / "c.yaml").write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
    broken = await build_elsewhere(ReloadSources(paths=(policy_dir,)))
    assert reason(broken) is RejectReason.POLICY_INVALID  # type: ignore[arg-type]
    (policy_dir / "c.yaml").unlink()
    write_cases(tmp_path / "cases.yaml", "UNOBODY", "allow")
    built = await build_elsewhere(ReloadSources(paths=(policy_dir,),
                                                test_paths=(tmp_path / "cases.yaml",)))
    assert isinstance(built, Built) and built.vetted is not None
    assert built.vetted.reason is RejectReason.TEST_CASES_FAILED


def test_the_account_check_comes_before_lint_and_test_cases(policy_file: Path) -> None:
    write_policy(policy_file, rule("alice", "UALICE", account="AUTH", subscribe=">"))
    strict = ReloadSources(paths=(policy_file,), reject_warnings=True)
    assert reason(prepare(strict, check_accounts)) is RejectReason.ACCOUNTS_REFUSED


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    write_policy(path, rule("alice", "UALICE"))
    return path


@pytest.mark.parametrize(("command", "expected"), [
    ("import sys; sys.exit(3)", "status 3"),
    # A built answer that breaks off, from a child that claims success.
    ("import sys; sys.stdout.buffer.write(b'B\\x00\\x00\\x01\\x00xy')", "broke off"),
    ("import time; time.sleep(30)", "longer than"),
])
async def test_a_failing_child_is_an_internal_error(
        monkeypatch: pytest.MonkeyPatch, policy_dir: Path, command: str, expected: str) -> None:
    monkeypatch.setattr("authsvc.policy_worker._CHILD", ("-c", command))
    result = await build_elsewhere(ReloadSources(paths=(policy_dir,)), timeout=2.0)
    assert reason(result) is RejectReason.INTERNAL_ERROR  # type: ignore[arg-type]
    assert isinstance(result, Rejected) and expected in result.detail


async def test_a_failing_child_keeps_the_last_good_policy(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy_file: Path) -> None:
    rig = Rig(tmp_path, ReloadSources(paths=(policy_file,)))
    before = rig.holder.current
    write_policy(policy_file, rule("bob", "UBOB"))
    monkeypatch.setattr("authsvc.policy_worker._CHILD", ("-c", "import os; os.abort()"))
    assert reason(await rig.reloader.reload(Trigger.SIGNAL)) is RejectReason.INTERNAL_ERROR
    assert rig.holder.current is before
    [event] = rig.events("policy.reload_rejected")
    assert event["reason"] == "internal_error"


async def test_the_new_policy_is_out_of_the_collectors_reach(
        tmp_path: Path, policy_dir: Path) -> None:
    rig = Rig(tmp_path, ReloadSources(paths=(policy_dir,)))
    write_policy(policy_dir / "a.yaml", *fleet(120, account="OPS")[:60])
    policy = await rig.reloader.reload(Trigger.SIGNAL)
    assert isinstance(policy, Policy)
    # gc.freeze() moved it to the permanent generation, which collections never walk.
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(r) in tracked or id(r.grant) in tracked for r in policy.rules)


async def test_the_replaced_policy_is_freed(tmp_path: Path, policy_dir: Path) -> None:
    rig = Rig(tmp_path, ReloadSources(paths=(policy_dir,)))
    replaced = weakref.ref(rig.holder.current)
    write_policy(policy_dir / "a.yaml", *fleet(120, account="OPS")[:60])
    assert isinstance(await rig.reloader.reload(Trigger.SIGNAL), Policy)
    await _settled(rig.reloader)
    assert replaced() is None


async def test_retire_waits_for_requests_still_holding_the_policy(policy_dir: Path) -> None:
    in_flight = load_policy([policy_dir])
    rules = weakref.ref(in_flight.rules[0])
    retiring = asyncio.ensure_future(retire([load_policy([policy_dir])]))
    await retiring  # nobody else held that one
    held = asyncio.ensure_future(retire([in_flight]))
    await asyncio.sleep(0.05)
    assert not held.done() and rules() is not None
    del in_flight  # the request finishes
    await held
    assert rules() is None


async def _settled(reloader: PolicyReloader) -> None:
    while reloader._tasks:
        await asyncio.sleep(0.01)


async def test_a_cancelled_reload_leaves_no_child_behind(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy_file: Path) -> None:
    marker = f"policy-build-{uuid.uuid4().hex}"
    monkeypatch.setattr("authsvc.policy_worker._CHILD",
                        ("-c", f"import time; time.sleep(60)  # {marker}"))
    rig = Rig(tmp_path, ReloadSources(paths=(policy_file,)))
    write_policy(policy_file, rule("bob", "UBOB"))
    rig.reloader.on_signal()
    while not _running(marker):
        await asyncio.sleep(0.02)
    await rig.reloader.aclose()
    assert not _running(marker)
    assert rig.reloader.activations == rig.reloader.rejections == 0


def _running(marker: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue  # gone meanwhile
    return False


async def test_a_child_that_may_not_lower_its_priority_still_builds(
        monkeypatch: pytest.MonkeyPatch, policy_dir: Path) -> None:
    # The shipped systemd unit denies setpriority (SystemCallFilter=~@resources, EPERM);
    # os.nice then raises, and the child must build anyway.
    refused = ("import os\n"
               "def nice(_):\n"
               "    raise PermissionError(1, 'Operation not permitted')\n"
               "os.nice = nice\n"
               "from authsvc.policy_worker import child; child()")
    monkeypatch.setattr("authsvc.policy_worker._CHILD", ("-P", "-c", refused))
    built = await build_elsewhere(ReloadSources(paths=(policy_dir,)))
    assert isinstance(built, Built)
