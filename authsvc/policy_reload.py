"""Hot reload of the policy, on SIGHUP and when a policy file changes.

A reload builds a candidate off the event loop (``asyncio.to_thread``), in the order a
reviewer would check it:

1. ``load_policy``: YAML, schema and semantic errors (``file:line:column``);
2. the composition root's account check (no grant into the callout or system account; in
   operator mode, a signing key for every account);
3. lint, only with ``reject_warnings`` (then any warning blocks);
4. the ``PolicyTest`` cases of ``test_paths``, run against the candidate (not against the
   policy the test files name), through the same ``explain`` the service uses;
5. a warm-up of the rule index, so the first decision under the new policy does not build it
   on the event loop.

Only a candidate that passes every step replaces ``holder.current``, in one assignment on the
event loop: a decision runs wholly under the old policy or wholly under the new one. A
rejected candidate leaves the last good policy serving; the rejection is logged, counted and
recorded as a ``policy.reload_rejected`` audit event with a stable ``reason`` code
(``RejectReason``). An activation is recorded as ``policy.activated``. A candidate whose
revision equals the active one changes nothing and records nothing.

This reloads policy files only. authsvc's settings and keys, and nats-server's own
configuration (accounts, ``auth_callout``), are not reloaded: a policy naming an account
nats-server does not know is activated with a warning, and its clients are refused by
nats-server until its config is regenerated (``authsvc nats-config``) and it is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from authsvc.audit import AuditWriter
from authsvc.domain import Identity, IdentitySource
from authsvc.errors import AuditError, ConfigError, PolicyError
from authsvc.policy import Policy, load_policy
from authsvc.policy.lint import lint
from authsvc.policy.load import POLICY_SUFFIXES, revision_of
from authsvc.policy.testing import read_test_file, run_case

log = logging.getLogger("authsvc.policy_reload")

ACTIVATED = "policy.activated"
REJECTED = "policy.reload_rejected"
# Audit details stay readable and bounded, whatever a broken file or suite produces.
MAX_ISSUES = 10
MAX_DETAIL = 4000
# Editors and ``kubectl cp`` write a file in several steps: wait this long after seeing a
# change and act only once the files have stopped changing.
SETTLE_SECONDS = 0.25


class RejectReason(StrEnum):
    """Why a candidate policy was not activated (``reason`` of ``policy.reload_rejected``)."""

    POLICY_INVALID = "policy_invalid"          # unreadable, YAML, schema or semantic error
    ACCOUNTS_REFUSED = "accounts_refused"      # an account this service cannot place users in
    LINT_WARNINGS = "lint_warnings"            # warnings, with ``reject_warnings``
    TEST_CASES_INVALID = "test_cases_invalid"  # a test file cannot be loaded
    TEST_CASES_FAILED = "test_cases_failed"    # a case's expectation does not hold
    INTERNAL_ERROR = "internal_error"          # a fault in authsvc while loading (a bug)


class Trigger(StrEnum):
    """What started a reload (``trigger`` of both events)."""

    SIGNAL = "sighup"
    FILE_CHANGE = "file_change"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate that failed a step: the code, and the text for the log and audit."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class ReloadSources:
    """Where the policy comes from and which checks a candidate must pass."""

    paths: tuple[Path, ...]
    test_paths: tuple[Path, ...] = ()
    reject_warnings: bool = False


class Holder(Protocol):
    """``server.PolicyHolder``: the active policy, replaced whole."""

    current: Policy


AccountCheck = Callable[[Policy], None]  # raises ConfigError for accounts it refuses


class PolicyRefused(PolicyError):
    """Startup's form of a rejection: the policy loads but fails a configured gate."""

    def __init__(self, rejected: Rejected, *, file: str = "") -> None:
        self.reason = rejected.reason
        super().__init__(f"policy refused ({rejected.reason}): {rejected.detail}", file=file)


def vet(policy: Policy, sources: ReloadSources) -> Rejected | None:
    """The optional gates (lint with ``reject_warnings``, test cases) for a loaded policy.

    Blocking: call it off the event loop. Startup runs it too, so a restart cannot activate
    a policy a reload would refuse.
    """
    if sources.reject_warnings:
        warnings = lint(policy)
        if warnings:
            return Rejected(RejectReason.LINT_WARNINGS, _summary(
                [f"{w.rule_id}: {w.code}: {w.message}" for w in warnings]))
    failures: list[str] = []
    empty = [path for path in sources.test_paths if path.is_dir() and not _policy_files(path)]
    if empty:  # a gate that silently tests nothing is a misconfiguration, not a pass
        return Rejected(RejectReason.TEST_CASES_INVALID,
                        f"{empty[0]}: directory holds no *.yaml or *.yml test files")
    for path in _test_files(sources.test_paths):
        try:
            tests = read_test_file(path)  # its own ``policy:`` is not loaded: we test ours
        except PolicyError as exc:
            return Rejected(RejectReason.TEST_CASES_INVALID, str(exc))
        for case in tests.cases:
            result = run_case(case, policy, str(path))
            failures.extend(f"{path}: {case.name}: {failure}" for failure in result.failures)
    if failures:
        return Rejected(RejectReason.TEST_CASES_FAILED, _summary(failures))
    return None


def prepare(sources: ReloadSources, check_accounts: AccountCheck) -> Policy | Rejected:
    """Load and check a candidate (steps 1-5 of the module docstring). Blocking."""
    try:
        policy = load_policy(sources.paths)
    except PolicyError as exc:
        return Rejected(RejectReason.POLICY_INVALID, str(exc))
    try:
        check_accounts(policy)
    except ConfigError as exc:
        return Rejected(RejectReason.ACCOUNTS_REFUSED, str(exc))
    rejected = vet(policy, sources)
    if rejected is not None:
        return rejected
    _warm(policy)
    return policy


def _warm(policy: Policy) -> None:
    # Rule conditions and the index are built lazily on first use; do it here, in the
    # reload thread, rather than in the first request after the swap (~40 ms at 10k rules).
    for rule in policy.rules:
        _ = rule.conditions
    policy.candidates(Identity(source=IdentitySource.NKEY, principal="", subject=""))


def _summary(issues: Sequence[str]) -> str:
    shown = list(issues[:MAX_ISSUES])
    if len(issues) > MAX_ISSUES:
        shown.append(f"... and {len(issues) - MAX_ISSUES} more")
    return "; ".join(shown)[:MAX_DETAIL]


def _test_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(_policy_files(path) if path.is_dir() else [path])
    return found


def _policy_files(directory: Path) -> list[Path]:
    """A directory's files as ``policy.load`` selects them (``*.yaml``/``*.yml``, no dot)."""
    try:
        return sorted(child for child in directory.iterdir()
                      if child.suffix in POLICY_SUFFIXES and not child.name.startswith(".")
                      and child.is_file())
    except OSError:
        return []


Stamp = tuple[tuple[str, int, int, int], ...]


def stamp(paths: Sequence[Path]) -> Stamp:
    """Cheap change detection: (name, mtime, size, inode) of every policy file, in order.

    Following symlinks, so a Kubernetes ConfigMap update (an atomic ``..data`` link swap)
    shows up as new inodes.
    """
    entries: list[tuple[str, int, int, int]] = []
    for path in paths:
        for file in _policy_files(path) if path.is_dir() else [path]:
            try:
                info = file.stat()
            except OSError:
                entries.append((str(file), -1, -1, -1))
                continue
            entries.append((str(file), info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(entries)


def disk_revision(paths: Sequence[Path]) -> str | None:
    """The revision the files on disk would load as (``load.revision_of``), or ``None``
    when they cannot be read; reading and hashing costs far less than parsing."""
    data: list[bytes] = []
    for path in paths:
        for file in _policy_files(path) if path.is_dir() else [path]:
            try:
                data.append(file.read_bytes())
            except OSError:
                return None
    return revision_of(data)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Suspend CPython's cyclic GC while a policy is built, then freeze what survives.

    Loading 10k rules makes ~600k long-lived objects. With the collector on, each full
    collection traverses all of them while holding the GIL, and they grow with the heap:
    measured up to 1.3 s per collection (bench/policy_eval.py), a stall of every request on
    the event loop. Loading creates no cyclic garbage, so the collector is paused for the
    build; one collection afterwards clears what the event loop left meanwhile, and
    ``gc.freeze`` moves the survivors (the new policy among them) out of all later
    collections. The replaced policy holds no cycles and is freed by reference counting.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        if was_enabled:
            gc.enable()


class PolicyReloader:
    """Reloads ``holder.current`` from ``sources`` on request, on SIGHUP and on file change.

    ``activations`` and ``rejections`` count outcomes (for tests and a future metrics
    endpoint); ``last_rejected`` is the most recent rejection.
    """

    def __init__(self, holder: Holder, sources: ReloadSources, *, audit: AuditWriter,
                 check_accounts: AccountCheck, interval: float = 2.0) -> None:
        self.holder = holder
        self.sources = sources
        self.interval = interval
        self.activations = 0
        self.rejections = 0
        self.last_rejected: Rejected | None = None
        self._audit = audit
        self._check_accounts = check_accounts
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()

    async def reload(self, trigger: Trigger) -> Policy | Rejected | None:
        """Build, check and activate a candidate; ``None`` when the files are unchanged."""
        async with self._lock:
            current = self.holder.current
            result = await asyncio.to_thread(self._candidate, current)
            if result is None:
                # A file watcher sees touches and unrelated saves; an operator's SIGHUP
                # deserves an answer in the log.
                level = logging.INFO if trigger is Trigger.SIGNAL else logging.DEBUG
                log.log(level, "policy reload (%s): unchanged, revision %s", trigger,
                        current.revision[:12])
                return None
            if isinstance(result, Rejected):
                self._reject(result, trigger, current)
                await self._commit()
                return result
            self._activate(result, trigger, current)
            retired = [current]
            del current
            await asyncio.to_thread(_dispose, retired)
            await self._commit()
            return result.policy

    def _candidate(self, current: Policy) -> _Candidate | Rejected | None:
        """Runs in a worker thread; everything proportional to the policy size happens here."""
        if disk_revision(self.sources.paths) == current.revision:
            return None
        try:
            with collector_paused():
                result = prepare(self.sources, self._check_accounts)
        except Exception as exc:
            # A bug in loading must not end the watcher; keeping the last good policy is the
            # safe side, and the event makes it visible.
            log.exception("policy reload failed unexpectedly")
            return Rejected(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[
                :MAX_DETAIL])
        if isinstance(result, Rejected):
            return result
        if result.revision == current.revision:
            return None
        return _Candidate(result, tuple(sorted(_accounts(result) - _accounts(current))))

    def _activate(self, candidate: _Candidate, trigger: Trigger, previous: Policy) -> None:
        policy, added = candidate.policy, candidate.accounts_added
        self._record(ACTIVATED, trigger=str(trigger), revision=policy.revision,
                     git_revision=policy.git_revision,
                     previous_revision=previous.revision, rules=len(policy.rules),
                     sources=list(policy.sources), accounts_added=list(added))
        self.holder.current = policy
        self.activations += 1
        log.info("policy %s activated (%s; %d rules; was %s)", policy.revision[:12], trigger,
                 len(policy.rules), previous.revision[:12])
        if added:
            log.warning("the new policy grants account(s) %s it did not before: nats-server "
                        "refuses those users until its config has them (regenerate it with "
                        "`authsvc nats-config` and restart nats-server)", ", ".join(added))

    def _reject(self, rejected: Rejected, trigger: Trigger, kept: Policy) -> None:
        self.rejections += 1
        self.last_rejected = rejected
        log.error("policy reload (%s) rejected, %s: %s; still serving revision %s", trigger,
                  rejected.reason, rejected.detail, kept.revision[:12])
        self._record(REJECTED, trigger=str(trigger), reason=str(rejected.reason),
                     detail=rejected.detail, kept_revision=kept.revision)

    def _record(self, kind: str, **fields: object) -> None:
        # Activation does not wait on the audit log: the decisions made under the new policy
        # carry its revision and fail closed themselves when the log cannot be written.
        try:
            self._audit.event(kind, **fields)
        except AuditError as exc:
            log.error("could not record %s: %s", kind, exc)

    async def _commit(self) -> None:
        try:
            await self._audit.commit()
        except AuditError as exc:
            log.error("could not make policy reload events durable: %s", exc)

    # -- triggers -----------------------------------------------------------------------

    def on_signal(self) -> None:
        """SIGHUP handler (``loop.add_signal_handler``): reload in a task."""
        self._spawn(self.reload(Trigger.SIGNAL))

    def start(self) -> None:
        """Watch the policy files every ``interval`` seconds (0 = only on SIGHUP).

        Also builds the startup policy's index, which would otherwise be built by the first
        request, and freezes the startup heap (see ``collector_paused``), so the collector
        never walks the startup policy either.
        """
        _warm(self.holder.current)
        gc.collect()
        gc.freeze()
        if self.interval > 0:
            self._spawn(self.watch())

    async def watch(self) -> None:
        """Reload whenever the policy files' stamps change and then hold still."""
        seen = await asyncio.to_thread(stamp, self.sources.paths)
        # A file changed between the startup load and this first stamp is caught here.
        await self.reload(Trigger.FILE_CHANGE)
        while True:
            await asyncio.sleep(self.interval)
            now = await asyncio.to_thread(stamp, self.sources.paths)
            if now == seen:
                continue
            await asyncio.sleep(SETTLE_SECONDS)
            if await asyncio.to_thread(stamp, self.sources.paths) != now:
                continue  # still being written; look again next round
            seen = now
            await self.reload(Trigger.FILE_CHANGE)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("policy reload task failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Stop watching and cancel pending reloads (a load already in its thread finishes,
        unused)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True, slots=True)
class _Candidate:
    policy: Policy
    accounts_added: tuple[str, ...]


def _accounts(policy: Policy) -> set[str]:
    return {rule.grant.account for rule in policy.rules if rule.grant is not None}


def _dispose(retired: list[Policy]) -> None:
    """Free a replaced policy rule by rule, in a worker thread.

    Dropping the last reference to 10k rules at once frees them in one C-level cascade that
    holds the GIL for ~60 ms; on the event loop that is a stall. Freed one rule per
    bytecode-level step here, the loop gets its turns in between.
    """
    rules = list(retired.pop().rules)
    while rules:
        rules.pop()
