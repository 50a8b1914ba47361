"""``audit stream-init`` / ``fetch``: what they make of a server the stream cannot live on.

A fake connection answers the STREAM.INFO probe the way nats-server 2.15 does (checked
against a real one): a 503 status message when no JetStream runs at all (no responders),
``err_code`` 10039 when JetStream runs but not for the account, 10059 for no stream.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from authsvc.audit.stream import STREAM
from authsvc.commands.audit_stream import NoJetStream, StreamMissing, require_jetstream


@dataclass
class Msg:
    data: bytes = b""
    headers: dict[str, str] | None = None


@dataclass
class Sub:
    async def unsubscribe(self) -> None:
        return None


@dataclass
class FakeConn:
    """Answers whatever is published with ``answer``, on the reply subject's callback."""

    answer: Msg
    published: list[str] = field(default_factory=list)
    callbacks: dict[str, Callable[[Any], Awaitable[None]]] = field(default_factory=dict)

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, queue: str = "",
                        cb: Callable[[Any], Awaitable[None]] | None = None) -> Sub:
        assert cb is not None
        self.callbacks[subject] = cb
        return Sub()

    async def publish(self, subject: str, payload: bytes = b"", reply: str = "",
                      headers: dict[str, str] | None = None) -> None:
        self.published.append(subject)
        await self.callbacks[reply](self.answer)


def error(code: int) -> Msg:
    return Msg(json.dumps({"error": {"code": 503, "err_code": code}}).encode())


NO_RESPONDERS = Msg(headers={"Status": "503"})
STREAM_INFO = Msg(json.dumps({"config": {"name": STREAM}, "state": {}}).encode())


@pytest.mark.parametrize(("answer", "need_stream", "raised"), [
    (NO_RESPONDERS, False, NoJetStream),     # stream-init said: failed: NoRespondersError
    (NO_RESPONDERS, True, NoJetStream),      # fetch said: failed with status 503
    (error(10039), False, NoJetStream),      # JetStream, but not for the callout account
    (error(10059), True, StreamMissing),     # fetch before the stream exists: also a 503 before
], ids=["init-no-jetstream", "fetch-no-jetstream", "not-for-the-account", "fetch-no-stream"])
async def test_a_server_the_stream_cannot_be_read_from_is_refused_by_kind(
        answer: Msg, need_stream: bool, raised: type[Exception]) -> None:
    conn = FakeConn(answer)
    with pytest.raises(raised):
        await require_jetstream(conn, where="nats://h:4222", account="AUTH",
                                need_stream=need_stream)
    assert conn.published == [f"$JS.API.STREAM.INFO.{STREAM}"]  # allowed to the service user


@pytest.mark.parametrize(("answer", "need_stream"), [
    (STREAM_INFO, True), (STREAM_INFO, False),
    (error(10059), False),  # stream-init creates it
])
async def test_a_server_with_jetstream_passes(answer: Msg, need_stream: bool) -> None:
    await require_jetstream(FakeConn(answer), where="nats://h:4222", account="AUTH",
                            need_stream=need_stream)
