"""``audit report``: what an auditor reads about a period, computed from the chains. Pure.

Totals; allows and denials over time; denials by reason and by identity; grants per
identity and account; the policy revisions active; key changes; audit-pipeline health
(sink outages, ``audit_unavailable`` denials); and the integrity verification of every
source chain: ``broken`` when a chain does not verify, else ``torn`` when one ends in a
torn record (a crash; ``verify`` exits 3 for it), else ``intact``. Members of the wrong
type read as absent and are counted (``malformed``).
``authsvc.audit.reporthtml`` renders it as one self-contained HTML file.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from authsvc.audit import checkpoint as cp
from authsvc.audit.chain import ChainHead
from authsvc.audit.export import Query, anchored_chains, chain_sources, cut_chain
from authsvc.audit.fields import malformed, obj, superseding, text, texts, timestamp
from authsvc.audit.keychange import KEY_CHANGED_TYPE, KeyChange, changes_of
from authsvc.audit.verify import Report, verify

DENIALS = ("deny", "error")
# Rows of the revisions table for decisions that name no policy revision, so that the
# table accounts for every decision in the totals. The service records a revision only
# after evaluating a policy; a denial before that (an expired token, an invalid request)
# has none. An allow without one can only be a record written before revisions were.
NO_POLICY = "(no policy applied: denied before evaluation)"
NOT_RECORDED = "(revision not recorded)"


@dataclass
class Grant:
    """Allows for one identity into one account."""

    count: int = 0
    first: str = ""
    last: str = ""
    rules: set[str] = field(default_factory=set)


@dataclass
class Revision:
    decisions: int = 0
    first: str = ""
    last: str = ""
    activated: int = 0


@dataclass(frozen=True)
class KeyChangeSeen:
    """One role's key change, as a ``key.changed`` record of the period stated it."""

    time: str
    instance: str
    change: KeyChange


@dataclass
class ChainIntegrity:
    instance: str
    result: str
    records: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    checkpoints_verified: int
    signatures_checked: bool
    gaps: list[tuple[int, int]]
    first_break: str


@dataclass
class PeriodReport:
    start: datetime
    end: datetime
    bucket: timedelta
    totals: Counter[str] = field(default_factory=Counter)           # allow/deny/error
    records: int = 0
    series: dict[datetime, Counter[str]] = field(default_factory=dict)
    deny_reasons: Counter[str] = field(default_factory=Counter)
    deny_identities: Counter[str] = field(default_factory=Counter)
    grants: dict[tuple[str, str], Grant] = field(default_factory=dict)
    revisions: dict[str, Revision] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    key_changes: list[KeyChangeSeen] = field(default_factory=list)
    integrity: list[ChainIntegrity] = field(default_factory=list)
    # Allows whose record did not become durable and that an error record replaces
    # (``supersedes``): taken back out of the allow counts, counted here.
    superseded: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # member -> records
    _recent_allows: OrderedDict[str, _Counted] = field(default_factory=OrderedDict, repr=False)

    @property
    def verdict(self) -> str:
        """The worst chain's result, as ``audit verify`` ranks them: ``broken``, then
        ``unsigned`` (with keys: records no verified checkpoint covers), then ``torn``."""
        results = {chain.result for chain in self.integrity}
        return next((r for r in ("broken", "unsigned", "torn") if r in results), "intact")

    @property
    def intact(self) -> bool:
        return self.verdict == "intact"


@dataclass(frozen=True, slots=True)
class _Counted:
    """Where one allow was counted, so an error record that supersedes it can undo it."""

    bucket: datetime | None
    grant: tuple[str, str]
    revision: str


# An error record follows the allow it supersedes within milliseconds, in the same chain;
# remembering this many allows covers that with room to spare.
_RECENT_ALLOWS = 4096
# The error record can land after the first record at or after --to (an allow at
# 23:59:59.999 superseded once its fsync failed, after a record of 00:00:00.002): the
# chain is read this far on, for ``supersedes`` only. A failing fsync can take seconds.
SUPERSEDE_GRACE = timedelta(seconds=60)


def bucket_size(start: datetime, end: datetime) -> timedelta:
    """Hours for up to three days, days up to 93, weeks beyond."""
    span = end - start
    if span <= timedelta(days=3):
        return timedelta(hours=1)
    return timedelta(days=1) if span <= timedelta(days=93) else timedelta(weeks=1)


def _bucket(report: PeriodReport, when: datetime) -> datetime:
    steps = (when - report.start) // report.bucket
    return report.start + steps * report.bucket


def _identity(record: dict[str, Any]) -> str:
    principal = obj(record, "identity").get("principal")
    if principal and isinstance(principal, str):
        return principal
    return f"(unverified) {text(record, 'user_nkey') or 'unknown'}"


def add(report: PeriodReport, record: dict[str, Any]) -> None:
    """Count one record of the period."""
    report.records += 1
    report.malformed.update(malformed(record))
    kind, when = text(record, "type") or "(none)", timestamp(record)
    stamp = text(record, "time")
    if kind != "decision":
        report.events[kind] += 1
        if kind == "policy.activated":
            _revision(report, text(record, "revision"), stamp).activated += 1
        elif kind == KEY_CHANGED_TYPE:
            instance = text(record, "instance")
            report.key_changes.extend(KeyChangeSeen(stamp, instance, change)
                                      for change in changes_of(record))
        return
    outcome = text(record, "decision") or "(none)"
    report.totals[outcome] += 1
    bucket = None
    if when is not None and report.start <= when < report.end:
        bucket = _bucket(report, when)
        report.series.setdefault(bucket, Counter())[outcome] += 1
    revision = text(record, "policy_revision")
    if not revision:
        revision = NO_POLICY if outcome in DENIALS else NOT_RECORDED
    _revision(report, revision, stamp).decisions += 1
    if outcome in DENIALS:
        report.deny_reasons[text(record, "reason") or "(none)"] += 1
        report.deny_identities[_identity(record)] += 1
        if superseding(record):
            _take_back(report, superseding(record))
    elif outcome == "allow":
        key = (_identity(record), str(record.get("account")))
        grant = report.grants.setdefault(key, Grant(first=stamp))
        grant.count += 1
        grant.last = stamp
        grant.rules.update(texts(record, "rule_ids"))
        recent = report._recent_allows
        recent[text(record, "event_id")] = _Counted(bucket, key, revision)
        if len(recent) > _RECENT_ALLOWS:
            recent.popitem(last=False)


def _take_back(report: PeriodReport, event_id: str) -> None:
    """Undo the counting of the allow ``event_id``: the client was refused after all."""
    counted = report._recent_allows.pop(event_id, None)
    if counted is None:
        return  # before the period, or not in these files: it was not counted here
    report.superseded += 1
    report.totals["allow"] -= 1
    if counted.bucket is not None:
        report.series[counted.bucket]["allow"] -= 1
    report.revisions[counted.revision].decisions -= 1
    grant = report.grants[counted.grant]
    grant.count -= 1
    if not grant.count:
        del report.grants[counted.grant]


def _revision(report: PeriodReport, revision: str, stamp: str) -> Revision:
    entry = report.revisions.setdefault(revision, Revision(first=stamp))
    entry.last = stamp
    return entry


def integrity(instance: str, source: Report, *, signatures: bool) -> ChainIntegrity:
    first = source.first_break
    return ChainIntegrity(
        instance=instance,
        result=source.result.value,
        records=source.records, first_seq=source.first_seq,
        last_seq=source.head.seq if source.records else None,
        checkpoints=source.checkpoints, checkpoints_verified=source.checkpoints_verified,
        signatures_checked=signatures, gaps=list(source.gaps),
        first_break="" if first is None else f"{first.kind.value} at {first.at}")


def build(paths: list[Path], start: datetime, end: datetime, *,
          keys: frozenset[str] | None = None,
          check: cp.SignatureCheck | None = None,
          anchor: ChainHead | None = None) -> PeriodReport:
    """Read every chain under ``paths`` and summarise ``[start, end)``; ``anchor`` is the
    head the first record follows when one chain was trimmed by retention."""
    report = PeriodReport(start=start, end=end, bucket=bucket_size(start, end))
    # csv: no run-on to a checkpoint; the grace: records past the period, for supersedes
    query = Query(start=start, end=end + SUPERSEDE_GRACE, format="csv")
    chains = chain_sources(paths)
    anchored_chains(chains, anchor)
    for files in chains:
        cut = cut_chain(files, query, _period(report), lambda _: None)
        source = verify(files, keys=keys, check=check, anchor=anchor)
        name = cut.instance or (files[0].parent.name if files else "")
        report.integrity.append(integrity(name, source, signatures=keys is not None))
    return report


def _period(report: PeriodReport) -> Callable[[dict[str, Any]], None]:
    """Count records up to the first one at or after the end (as export cuts the period);
    after it, only take back the allows that error records supersede."""
    past = False

    def take(record: dict[str, Any]) -> None:
        nonlocal past
        when = timestamp(record)
        past = past or (when is not None and when >= report.end)
        if not past:
            add(report, record)
        elif superseding(record):
            _take_back(report, superseding(record))
    return take
