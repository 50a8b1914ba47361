"""Durable audit records per second through AuditLog + FileSink (fsync, group commit).

``python -m bench.audit_sink [--records N] [--concurrency C] [--dir D]`` writes N decision
records of realistic size from C concurrent tasks, each awaiting ``commit()`` as the
service does before answering an allow, then verifies the chain it wrote. ``--sink
jetstream`` measures the JetStream sink against a local nats-server with JetStream (file
storage, started here): each commit waits for both the spool file's fsync and the
stream's ack, as ``audit.sink: jetstream`` does; the stream is read back and verified.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from authsvc.audit import AuditLog, FileSink, verify
from authsvc.audit.fetch import collect, write
from authsvc.audit.jetstream import JetStreamSink, SinkConfig, SinkState
from authsvc.audit.stream import StreamSpec, read_stream, subject_for
from authsvc.clock import SystemClock
from authsvc.natsconf.process import NatsServer, free_port
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


def _jetstream(folder: Path) -> tuple[NatsServer, JetStreamSink]:
    port = free_port()
    conf = folder / "js.conf"
    conf.write_text(json.dumps({"listen": f"127.0.0.1:{port}", "jetstream": {
        "store_dir": str(folder / "js")}}))
    server = NatsServer(conf, port=port).start()

    async def connect() -> Any:
        return await nats.connect(server.url, pending_size=64 * 1024 * 1024)

    config = SinkConfig(subject=subject_for("bench"), stream=StreamSpec(), ack_timeout=5.0,
                        max_bytes=1 << 30, prune=True)
    return server, JetStreamSink(folder / "audit.jsonl", connect, config)


async def _stream_verified(server: NatsServer, signer: KeyPair, folder: Path) -> int:
    conn = await nats.connect(server.url)
    found = await collect(read_stream(conn))
    await conn.close()
    write(found, folder / "stream")
    report = verify([folder / "stream" / "bench"], keys=frozenset({signer.public_key}),
                    check=nkeys.verify)
    assert report.ok and found.chains["bench"].duplicates == 0
    return report.decisions["allow"]


async def run(records: int, concurrency: int, folder: Path, sink: str = "file") -> float:
    signer = KeyPair.create(Prefix.USER)
    server, remote = _jetstream(folder) if sink == "jetstream" else (None, None)
    audit = AuditLog(FileSink(folder / "audit.jsonl", fsync=True), instance="bench",
                     clock=SystemClock(), signer=signer, checkpoint_every=0, remote=remote)
    per_task = records // concurrency
    if remote is not None:
        audit.start()  # connect and create the stream before the clock starts
        while remote.state is not SinkState.LIVE:
            await asyncio.sleep(0.01)

    async def writer() -> None:
        for _ in range(per_task):
            audit.append(dict(RECORD))
            await audit.commit()

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    audit.checkpoint()
    await audit.commit()
    if server is not None and remote is not None:
        assert remote.state is SinkState.LIVE, "the stream fell behind: not a durable rate"
        await audit.aclose()
        assert await _stream_verified(server, signer, folder) == per_task * concurrency
        server.stop()
        return per_task * concurrency / elapsed
    audit.close()
    report = verify([folder], keys=frozenset({signer.public_key}), check=nkeys.verify)
    assert report.ok and report.decisions["allow"] == per_task * concurrency
    return per_task * concurrency / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    parser.add_argument("--sink", nargs="+", choices=["file", "jetstream"],
                        default=["file", "jetstream"])
    args = parser.parse_args()
    titles = {"file": "file sink, fsync=true, group commit",
              "jetstream": "jetstream sink: spool fsync + stream ack (R1, file storage)"}
    for sink in args.sink:
        print(f"{titles[sink]}; durable records/s")
        for concurrency in args.concurrency:
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                records = args.records if concurrency > 1 else min(args.records, 2000)
                rate = asyncio.run(run(records, concurrency, Path(tmp), sink))
                print(f"  concurrency {concurrency:4d}: {rate:10,.0f} records/s "
                      f"({records} records)")


if __name__ == "__main__":
    main()
