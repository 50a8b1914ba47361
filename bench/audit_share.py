"""The audit log's share of authsvc's CPU per connect.

An allow costs the audit log two things: building, chaining and writing its record
(``DecisionFacts`` -> ``to_record`` -> ``AuditLog.append``), and making it durable before
the answer (fsync, group-committed on the fsync thread). :func:`record_cost` times the
first in a tight loop on a real file. ``bench.connect`` measures the second two ways:

* **in the service**, from authsvc's own /metrics over the measured window: the fsync
  thread's CPU per connect, plus, per group commit, the event loop's CPU to hand the fsync
  over and be woken when it is done (:func:`wakeup_cost`, timed here); this compares
  nothing across runs, so it is steady on a noisy host;
* **across scenarios**, as the CPU per connect authsvc saves with ``audit.fsync=false``
  (scenario ``authsvc-nofsync``), which also picks up any effect of durability on the rest
  of the service, but is the difference of two runs' medians and moves by a few hundred µs
  from one run to the next on a shared host.

``python -m bench.audit_share`` prints the record and wake-up costs alone.
"""


from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from authsvc.audit import AuditLog, DecisionFacts, FileSink, Outcome, to_record
from authsvc.audit.fsyncer import Fsyncer
from authsvc.clock import SystemClock
from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Grant,
    Identity,
    IdentitySource,
    Permissions,
    ServerInfo,
)
from authsvc.domain.permissions import SubjectPermission
from authsvc.minting import permission_claims
from authsvc.protocol.nkeys import KeyPair, Prefix

#: The audit issue's budget: at most this share of the service CPU per connect.
TARGET_SHARE = 0.10


def _facts(user: KeyPair, server: KeyPair, now: datetime) -> DecisionFacts:
    """An allow as the connect benchmark's authsvc scenario records it."""
    request = ConnectRequest(
        server=ServerInfo(id=server.public_key, name="bench", version="2.15.1"),
        user_nkey=KeyPair.create(Prefix.USER).public_key,
        client=ClientInfo(host="127.0.0.1", cid=4711, kind="Client", type="nats"),
        connect=ConnectOptions(nkey=user.public_key, lang="bench", version="1", protocol=1),
        request_id="J" * 52, issued_at=now, expires_at=now + timedelta(seconds=2),
        sealed=True, raw_size=1100)
    identity = Identity(source=IdentitySource.NKEY, principal=f"nkey:{user.public_key}",
                        subject=user.public_key)
    grant = Grant(account="APP", permissions=Permissions(
        pub=SubjectPermission(allow=("bench.>",)), sub=SubjectPermission(allow=("_INBOX.>",))),
        ttl=timedelta(minutes=10), rule_ids=("bench-client",))
    return DecisionFacts(
        time=now, outcome=Outcome.ALLOW, reason="allowed", request=request, identity=identity,
        grant=grant, permissions=permission_claims(grant.permissions), jwt_id="J" * 52,
        jwt_expires_at=now + timedelta(minutes=10), policy_revision="f" * 64,
        rule_ids=grant.rule_ids, latency_ms=0.9,
        stages_ms={"decode": 0.2, "verify": 0.1, "policy": 0.05, "mint": 0.1})


def record_cost(records: int = 5000, folder: Path | None = None) -> float:
    """CPU µs to build, chain and write one allow record (no fsync), median of 5 batches."""
    signer = KeyPair.create(Prefix.USER)
    facts = _facts(KeyPair.create(Prefix.USER), KeyPair.create(Prefix.SERVER), datetime.now(UTC))
    samples = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        audit = AuditLog(FileSink(Path(tmp) / "audit.jsonl", fsync=False), instance="bench",
                         clock=SystemClock(), signer=signer, checkpoint_every=0)
        audit.append(to_record(facts))  # resume the chain, open the file
        for _ in range(5):
            started = time.process_time()
            for _ in range(records // 5):
                audit.append(to_record(facts))
            samples.append((time.process_time() - started) / (records // 5) * 1e6)
        audit.close()
    samples.sort()
    return samples[len(samples) // 2]


@dataclass(frozen=True)
class AuditWindow:
    """authsvc's audit counters (``authsvc_audit_*`` on /metrics), or their change over a
    window."""

    records: float = 0.0
    fsyncs: float = 0.0
    fsync_cpu_s: float = 0.0

    def __sub__(self, earlier: AuditWindow) -> AuditWindow:
        return AuditWindow(self.records - earlier.records, self.fsyncs - earlier.fsyncs,
                           self.fsync_cpu_s - earlier.fsync_cpu_s)


def audit_counters(url: str) -> AuditWindow:
    """Scrape authsvc's /metrics for its audit counters."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    values = {sample.name: sample.value for family in text_string_to_metric_families(text)
              for sample in family.samples}
    return AuditWindow(values.get("authsvc_audit_records_total", 0.0),
                       values.get("authsvc_audit_fsyncs_total", 0.0),
                       values.get("authsvc_audit_fsync_cpu_seconds_total", 0.0))


def wakeup_cost(rounds: int = 1500, folder: Path | None = None) -> float:
    """CPU µs the event loop's thread spends per group commit besides the fsync thread's own
    work: handing the fsync over and being woken when it is done (median of 5 batches)."""
    return asyncio.run(_wakeup_cost(rounds, folder))


async def _wakeup_cost(rounds: int, folder: Path | None) -> float:
    fsyncer = Fsyncer()
    samples = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        fd = os.open(Path(tmp) / "wake.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            await fsyncer.fsync(fd)  # start the thread
            for _ in range(5):
                thread_before = fsyncer.stats.cpu_seconds
                started = time.process_time()
                for _ in range(rounds // 5):
                    os.write(fd, b"x" * 1400 + b"\n")
                    await fsyncer.fsync(fd)
                process = time.process_time() - started
                thread = fsyncer.stats.cpu_seconds - thread_before
                started = time.process_time()
                for _ in range(rounds // 5):  # the same writes without the fsync round trip
                    os.write(fd, b"x" * 1400 + b"\n")
                    await asyncio.sleep(0)
                baseline = time.process_time() - started
                samples.append((process - thread - baseline) / (rounds // 5) * 1e6)
        finally:
            fsyncer.stop()
            os.close(fd)
    samples.sort()
    return max(samples[len(samples) // 2], 0.0)


def in_service(window: AuditWindow, connects: int, wakeup_us: float) -> float | None:
    """Durability's CPU per connect as the service's own counters show it."""
    if connects <= 0 or window.fsyncs <= 0:
        return None
    return (window.fsync_cpu_s * 1e6 + window.fsyncs * wakeup_us) / connects


def share(record_us: float, service_us: float, service_nofsync_us: float | None) -> float:
    """The audit log's share of the service CPU per connect.

    Durability is what authsvc saves per connect with ``audit.fsync=false`` (the fsync and
    its thread hand-off); the record itself is built and written in both runs, so its cost
    comes from :func:`record_cost`.
    """
    durability = max(service_us - service_nofsync_us, 0.0) if service_nofsync_us else 0.0
    return (record_us + durability) / service_us


def render(record_us: float, service_us: float | None,
           service_nofsync_us: float | None) -> str:
    """One report line: the record cost and, with the connect figures, the share."""
    line = f"audit record (build, chain, write; no fsync): {record_us:.0f} µs CPU"
    if service_us:
        durability = (f"{max(service_us - service_nofsync_us, 0.0):.0f} µs"
                      if service_nofsync_us else "n/a (authsvc-nofsync did not run)")
        line += (f"; durability (authsvc - authsvc-nofsync): {durability}; audit log = "
                 f"{share(record_us, service_us, service_nofsync_us):.0%} of authsvc's "
                 f"{service_us:.0f} µs per connect (target <= {TARGET_SHARE:.0%})")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    print(render(record_cost(args.records, args.dir), None, None))
    print(f"fsync hand-off and wake-up on the event loop: {wakeup_cost(folder=args.dir):.0f} "
          "µs CPU per group commit")


if __name__ == "__main__":
    main()
