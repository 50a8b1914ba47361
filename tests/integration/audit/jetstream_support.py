"""A real nats-server with JetStream, and an AuditLog whose records go to it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats

from authsvc.audit import AuditLog, FileSink, Rotation
from authsvc.audit.fetch import Collected, collect, write
from authsvc.audit.jetstream import JetStreamSink, SinkConfig, SinkState
from authsvc.audit.stream import StreamSpec, read_stream, subject_for
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.protocol.nkeys import KeyPair


class StepClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=10)
        return self.at


@dataclass
class JetStreamServer:
    """``nats-server -js`` on loopback without auth; restartable on the same port and store."""

    root: Path
    port: int = 0
    server: NatsServer | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        conf = {"listen": f"127.0.0.1:{self.port}", "server_name": "audit-js",
                "jetstream": {"store_dir": str(self.root / "js")}}
        (self.root / "js.conf").write_text(json.dumps(conf))

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> JetStreamServer:
        self.server = NatsServer(self.root / "js.conf", port=self.port).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    async def connect(self) -> Any:
        return await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                                  connect_timeout=1, allow_reconnect=True)

    async def records(self) -> Collected:
        conn = await nats.connect(self.url)
        try:
            return await collect(read_stream(conn))
        finally:
            await conn.close()

    async def fetch_to(self, out: Path) -> Collected:
        found = await self.records()
        write(found, out)
        return found


def make_log(path: Path, js: JetStreamServer, signer: KeyPair, *, instance: str = "test",
             rotation: Rotation | None = None, **config: Any) -> AuditLog:
    options: dict[str, Any] = {"ack_timeout": 0.3, "retry_interval": 0.1, **config}
    sink = JetStreamSink(path, js.connect,
                         SinkConfig(subject=subject_for(instance), stream=StreamSpec(),
                                    **options))
    return AuditLog(FileSink(path, fsync=False), instance=instance, clock=StepClock(),
                    signer=signer, checkpoint_every=0, rotation=rotation, remote=sink)


def sink_of(log: AuditLog) -> JetStreamSink:
    assert isinstance(log.remote, JetStreamSink)
    return log.remote


async def write_records(log: AuditLog, count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        log.append({"type": "decision", "decision": "allow", "reason": "allowed", "n": n})
        await log.commit()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def wait_live(log: AuditLog) -> None:
    sink = sink_of(log)
    await wait_for(lambda: sink.state is SinkState.LIVE and sink.acked >= sink.last)
