"""Hot reload of the policy, on SIGHUP and when a policy file changes.

A reload builds a candidate in a child process (``policy_worker``), through the gates of
``policy_gates`` in the order a reviewer would check it: loading (``file:line:column``
errors), the account check, lint with ``reject_warnings``, and the ``PolicyTest`` cases of
``test_paths``. The event loop that answers nats-server only takes in the child's answer
(unpickling it and filing the rule index a fraction of a millisecond at a time), runs the
account check (one pass over the rules' accounts) and frees the replaced policy in steps;
nothing of the build runs on it or competes with it for the GIL.

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
from collections.abc import Coroutine, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from authsvc.audit import AuditWriter
from authsvc.errors import AuditError
from authsvc.policy import Policy
from authsvc.policy.load import revision_of
from authsvc.policy_gates import (
    AccountCheck,
    Built,
    PolicyRefused,
    Rejected,
    RejectReason,
    ReloadSources,
    admit,
    policy_files,
    prepare,
    vet,
)
from authsvc.policy_worker import accounts, build_elsewhere, retire, warm

__all__ = [  # the gates are defined in policy_gates; callers know them from here
    "ACTIVATED", "REJECTED", "AccountCheck", "PolicyRefused", "PolicyReloader", "RejectReason",
    "Rejected", "ReloadSources", "Trigger", "disk_revision", "prepare", "stamp", "vet",
]

log = logging.getLogger("authsvc.policy_reload")

ACTIVATED = "policy.activated"
REJECTED = "policy.reload_rejected"
# Editors and ``kubectl cp`` write a file in several steps: wait this long after seeing a
# change and act only once the files have stopped changing.
SETTLE_SECONDS = 0.25


class Trigger(StrEnum):
    """What started a reload (``trigger`` of both events)."""

    SIGNAL = "sighup"
    FILE_CHANGE = "file_change"


class Holder(Protocol):
    """``server.PolicyHolder``: the active policy, replaced whole."""

    current: Policy


Stamp = tuple[tuple[str, int, int, int], ...]


def stamp(paths: Sequence[Path]) -> Stamp:
    """Cheap change detection: (name, mtime, size, inode) of every policy file, in order.

    Following symlinks, so a Kubernetes ConfigMap update (an atomic ``..data`` link swap)
    shows up as new inodes.
    """
    entries: list[tuple[str, int, int, int]] = []
    for path in paths:
        for file in policy_files(path) if path.is_dir() else [path]:
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
        for file in policy_files(path) if path.is_dir() else [path]:
            try:
                data.append(file.read_bytes())
            except OSError:
                return None
    return revision_of(data)


class PolicyReloader:
    """Reloads ``holder.current`` from ``sources`` on request, on SIGHUP and on file change.

    ``activations``, ``rejections`` (also ``rejections_by_reason``) and ``failing`` describe
    the outcomes (read by ``authsvc.metrics`` at scrape time); ``last_rejected`` is the most
    recent rejection.
    """

    def __init__(self, holder: Holder, sources: ReloadSources, *, audit: AuditWriter,
                 check_accounts: AccountCheck, interval: float = 2.0) -> None:
        self.holder = holder
        self.sources = sources
        self.interval = interval
        self.activations = 0
        self.rejections_by_reason: dict[str, int] = {}
        # The latest reload was rejected; cleared by an activation, or when the files on
        # disk are back to the revision in force (the bad change was reverted).
        self.failing = False
        self.last_rejected: Rejected | None = None
        self._rejected_revision: str | None = None  # what the files held when last rejected
        self._audit = audit
        self._check_accounts = check_accounts
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def rejections(self) -> int:
        """Rejected reloads, all reasons."""
        return sum(self.rejections_by_reason.values())

    async def reload(self, trigger: Trigger) -> Policy | Rejected | None:
        """Build, check and activate a candidate; ``None`` when the files are unchanged."""
        async with self._lock:
            kept = self.holder.current.revision
            built: Built | Rejected | None = None
            disk = await asyncio.to_thread(disk_revision, self.sources.paths)
            if disk == kept and self.failing:
                self.failing, self._rejected_revision = False, None
                log.info("policy reload (%s): the files are back to revision %s, which is in "
                         "force; the rejected change is gone", trigger, kept[:12])
                return None
            if trigger is Trigger.FILE_CHANGE and disk is not None \
                    and disk == self._rejected_revision:
                return None  # the files a SIGHUP just had rejected: nothing new to judge
            if disk != kept:
                built = await self._build(kept)
            if built is None:
                # A file watcher sees touches and unrelated saves; an operator's SIGHUP
                # deserves an answer in the log.
                level = logging.INFO if trigger is Trigger.SIGNAL else logging.DEBUG
                log.log(level, "policy reload (%s): unchanged, revision %s", trigger,
                        kept[:12])
                return None
            retired: list[Policy] = []
            if isinstance(built, Rejected):
                result: Policy | Rejected = built
            else:
                result, added = await self._check(built, retired)
                del built
                if isinstance(result, Policy):
                    retired.append(self.holder.current)
                    self._activate(result, trigger, retired[-1].revision, added)
            if isinstance(result, Rejected):
                self._rejected_revision = disk
                self._reject(result, trigger, kept)
            if retired:  # the replaced policy, or a candidate refused here
                self._spawn(retire(retired))
            await self._commit()
            return result

    async def _build(self, kept: str) -> Built | Rejected | None:
        try:
            return await build_elsewhere(self.sources, unless_revision=kept)
        except Exception as exc:
            # The child could not be started, or a bug: keeping the last good policy is
            # the safe side, and the rejection makes it visible.
            log.exception("policy reload failed unexpectedly")
            return Rejected(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    async def _check(self, built: Built, retired: list[Policy]
                     ) -> tuple[Policy | Rejected, list[str]]:
        """Run the account check on the child's candidate and list the accounts it adds;
        a refused candidate goes to ``retired``."""
        try:
            # On the loop: one pass over the rules' accounts, about a millisecond at 10k
            # rules. In a thread it would hold the GIL from the loop for a switch interval.
            result = admit(built, self._check_accounts)
            if isinstance(result, Rejected):
                retired.append(built.policy)
                return result, []
            ours, theirs = await accounts(result), await accounts(self.holder.current)
        except Exception as exc:
            # A bug in authsvc must not end the watcher; keeping the last good policy is
            # the safe side, and the rejection makes it visible.
            log.exception("policy reload failed unexpectedly")
            return Rejected(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"), []
        return result, sorted(ours - theirs)

    def _activate(self, policy: Policy, trigger: Trigger, previous: str,
                  added: list[str]) -> None:
        self._record(ACTIVATED, trigger=str(trigger), revision=policy.revision,
                     git_revision=policy.git_revision, previous_revision=previous,
                     rules=len(policy.rules), sources=list(policy.sources),
                     accounts_added=added)
        self.holder.current = policy
        self.activations += 1
        self.failing = False
        log.info("policy %s activated (%s; %d rules; was %s)", policy.revision[:12], trigger,
                 len(policy.rules), previous[:12])
        if added:
            log.warning("the new policy grants account(s) %s it did not before: nats-server "
                        "refuses those users until its config has them (regenerate it with "
                        "`authsvc nats-config` and restart nats-server)", ", ".join(added))

    def _reject(self, rejected: Rejected, trigger: Trigger, kept: str) -> None:
        reason = str(rejected.reason)
        self.rejections_by_reason[reason] = self.rejections_by_reason.get(reason, 0) + 1
        self.failing = True
        self.last_rejected = rejected
        # One log line (line-based shippers split a traceback); the audit event has it all.
        detail = " | ".join(line.strip() for line in rejected.detail.splitlines() if line.strip())
        log.error("policy reload (%s) rejected, %s: %s; still serving revision %s", trigger,
                  rejected.reason, detail[:2000], kept[:12])
        self._record(REJECTED, trigger=str(trigger), reason=str(rejected.reason),
                     detail=rejected.detail, kept_revision=kept)

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

        Also freezes the startup heap (see ``policy_worker``), so the collector never
        walks the startup policy, and builds its rule conditions and index in steps, which
        the first requests would otherwise build, and freezes those too. The service is
        already answering: a collection first would walk the whole startup heap (0.2 s at
        10k rules), so what cyclic garbage startup left is frozen with it.
        """
        gc.freeze()
        self._spawn(_settle(self.holder.current))
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
        """Stop watching and cancel pending reloads; a build under way is stopped (its child
        process is killed) and changes nothing."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _settle(policy: Policy) -> None:
    await warm(policy)
    gc.freeze()
