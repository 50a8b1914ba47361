"""Durable audit records per second through AuditLog + FileSink (fsync, group commit).

``python -m bench.audit_sink [--records N] [--concurrency C] [--dir D]`` writes N decision
records of realistic size from C concurrent tasks, each awaiting ``commit()`` as the
service does before answering an allow, then verifies the chain it wrote. The JetStream
sink is not implemented yet, so only the file sink is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from authsvc.audit import AuditLog, FileSink, verify
from authsvc.clock import SystemClock
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair, Prefix

RECORD = {
    "type": "decision", "decision": "allow", "reason": "allowed", "account": "APP",
    "identity": {"source": "nkey", "principal": "nkey:" + "U" * 56, "subject": "U" * 56},
    "permissions": {"pub": {"allow": ["orders.v2.created"], "deny": []},
                    "sub": {"allow": ["orders.v2.>"], "deny": []}},
    "client": {"host": "127.0.0.1", "cid": 7, "type": "nats", "name": "orders"},
    "server": {"id": "N" * 56, "name": "n1", "cluster": "", "version": "2.15.1"},
    "rule_ids": ["orders-service"], "policy_revision": "f" * 64, "latency_ms": 0.61,
}


async def run(records: int, concurrency: int, folder: Path) -> float:
    signer = KeyPair.create(Prefix.USER)
    audit = AuditLog(FileSink(folder / "audit.jsonl", fsync=True), instance="bench",
                     clock=SystemClock(), signer=signer, checkpoint_every=0)
    per_task = records // concurrency

    async def writer() -> None:
        for _ in range(per_task):
            audit.append(dict(RECORD))
            await audit.commit()

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    audit.checkpoint()
    await audit.commit()
    audit.close()
    report = verify([folder], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok and report.decisions["allow"] == per_task * concurrency
    return per_task * concurrency / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    print("file sink, fsync=true, group commit; durable records/s")
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            records = args.records if concurrency > 1 else min(args.records, 2000)
            rate = asyncio.run(run(records, concurrency, Path(tmp)))
            print(f"  concurrency {concurrency:4d}: {rate:10,.0f} records/s ({records} records)")


if __name__ == "__main__":
    main()
