"""Speak the NATS client protocol by hand, to send CONNECTs no client library would send."""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def raw_connect(host: str, port: int, build: Any, timeout: float = 5.0) -> str:
    """Read INFO, send ``build(info)`` as CONNECT + PING; return the first reply line.

    ``build`` receives the INFO dict (with ``nonce``) and returns the CONNECT fields.
    The answer is ``"PONG"`` when admitted, the ``-ERR ...`` line otherwise.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        info = json.loads(line.decode().split(" ", 1)[1])
        connect = {"verbose": False, "pedantic": False, "protocol": 1, "lang": "raw",
                   **build(info)}
        writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        while True:
            reply = (await asyncio.wait_for(reader.readline(), timeout)).decode().strip()
            if reply.startswith(("PONG", "-ERR")):
                return reply
    finally:
        writer.close()
