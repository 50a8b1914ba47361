"""connect_once against a scripted in-process server on loopback: outcomes are told apart."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nacl.signing import SigningKey

from bench.loadgen import NkeyCredentials, TokenCredentials, connect_once

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> int:
        async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(session, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _answer(*lines: bytes, info: bytes = b'INFO {"server_id":"N1"}\r\n') -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(info)
        try:
            await reader.readuntil(b"PING\r\n")
        except asyncio.IncompleteReadError:  # the client gave up before sending CONNECT
            return
        for line in lines:
            writer.write(line)
        await writer.drain()

    return script


async def test_pong_is_success(serve: Callable[[Script], Awaitable[int]]) -> None:
    port = await serve(_answer(b"PONG\r\n"))
    _, error = await connect_once("127.0.0.1", port, TokenCredentials("t"), 2.0)
    assert error is None


async def test_err_is_failure_with_reason(serve: Callable[[Script], Awaitable[int]]) -> None:
    port = await serve(_answer(b"-ERR 'Authorization Violation'\r\n"))
    _, error = await connect_once("127.0.0.1", port, TokenCredentials("t"), 2.0)
    assert error == "-ERR Authorization Violation"


async def test_ping_before_pong_is_skipped(serve: Callable[[Script], Awaitable[int]]) -> None:
    port = await serve(_answer(b"PING\r\n", b"+OK\r\n", b"PONG\r\n"))
    _, error = await connect_once("127.0.0.1", port, TokenCredentials("t"), 2.0)
    assert error is None


async def test_close_without_answer_is_failure(
    serve: Callable[[Script], Awaitable[int]],
) -> None:
    port = await serve(_answer())
    _, error = await connect_once("127.0.0.1", port, TokenCredentials("t"), 2.0)
    assert error is not None and "closed" in error


async def test_silence_is_timeout(serve: Callable[[Script], Awaitable[int]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"N1"}\r\n')
        await asyncio.sleep(1)

    port = await serve(silent)
    _, error = await connect_once("127.0.0.1", port, TokenCredentials("t"), 0.2)
    assert error == "timeout"


async def test_nkey_signs_the_nonce(serve: Callable[[Script], Awaitable[int]]) -> None:
    seed = bytes(range(32))
    received: list[bytes] = []

    async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"N1","nonce":"abc123"}\r\n')
        received.append(await reader.readuntil(b"PING\r\n"))
        writer.write(b"PONG\r\n")
        await writer.drain()

    port = await serve(check)
    _, error = await connect_once("127.0.0.1", port, NkeyCredentials("UKEY", seed), 2.0)
    assert error is None
    body = received[0].split(b"\r\n")[0].partition(b" ")[2]
    fields = json.loads(body)
    assert fields["nkey"] == "UKEY"
    SigningKey(seed).verify_key.verify(b"abc123", base64.b64decode(fields["sig"]))


async def test_nkey_without_nonce_is_failure(serve: Callable[[Script], Awaitable[int]]) -> None:
    port = await serve(_answer(b"PONG\r\n"))
    _, error = await connect_once("127.0.0.1", port, NkeyCredentials("U", bytes(32)), 2.0)
    assert error is not None and "nonce" in error
