"""The service's NATS client never logs in over plaintext when TLS is asked for, and a
plaintext INFO on a reconnect is one more failed attempt, not the end of reconnecting.

A fake server on loopback answers with INFO then TLS, as nats-server does with TLS
required; for a while it answers without ``tls_required`` instead (a server without TLS,
or something on the path rewriting INFO)."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

from authsvc.server import TlsNotOffered, _TlsOnlyClient
from tests.support.pki import Pki


async def test_a_plaintext_info_on_reconnect_is_retried_and_never_answered(
        tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    server_cert = pki.server("127.0.0.1")
    tls_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_server.load_cert_chain(str(server_cert.cert_file), str(server_cert.key_file))
    state: dict[str, Any] = {"tls": True, "plaintext_bytes": 0, "plaintext_infos": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = state["tls"]
        info: dict[str, Any] = {"server_id": "FAKE", "version": "2.15.1",
                                "max_payload": 1048576, "proto": 1}
        if tls:
            info["tls_required"] = True
        else:
            state["plaintext_infos"] += 1
        writer.write(b"INFO " + json.dumps(info).encode() + b"\r\n")
        await writer.drain()
        try:
            if tls:
                await writer.start_tls(tls_server)
            while line := await asyncio.wait_for(reader.readline(), 10):
                if not tls:
                    state["plaintext_bytes"] += len(line)
                if line.startswith(b"PING"):
                    writer.write(b"PONG\r\n")
                    await writer.drain()
                    state["writer"] = writer
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    client = _TlsOnlyClient()
    await client.connect(servers=[f"tls://127.0.0.1:{port}"],
                         tls=ssl.create_default_context(cafile=str(pki.ca_file)),
                         reconnect_time_wait=0.1, max_reconnect_attempts=-1,
                         error_cb=on_error, connect_timeout=2)
    try:
        state["tls"] = False
        state["writer"].close()  # the connection drops; the client reconnects in vain
        for _ in range(100):
            if state["plaintext_infos"] >= 2:
                break
            await asyncio.sleep(0.05)
        state["tls"] = True
        for _ in range(100):
            if client.is_connected:
                break
            await asyncio.sleep(0.05)
        assert client.is_connected
        assert state["plaintext_infos"] >= 2 and state["plaintext_bytes"] == 0
        assert any(isinstance(exc, TlsNotOffered) for exc in errors)
    finally:
        await client.close()
        server.close()


async def test_a_tls_url_of_the_audit_connection_alone_asks_for_tls(tmp_path: Path) -> None:
    """nats.url is plain (loopback) but audit.jetstream.url is tls://: the audit connection
    must refuse a server that does not require TLS before sending its login."""
    import pytest

    from authsvc.errors import ConfigError
    from authsvc.natsconf.keystore import KeyStore
    from authsvc.server import connect
    from authsvc.settings import load_settings

    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"FAKE","version":"2.15.1","max_payload":1048576,'
                     b'"proto":1,"nonce":"abcdefghijk","auth_required":true}\r\n')
        await writer.drain()
        while line := await reader.readline():
            received.append(line)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    keys = KeyStore(tmp_path / "keys")
    keys.ensure(operator_mode=False)
    (tmp_path / "p").mkdir()
    settings = load_settings(None, policy={"paths": [str(tmp_path / "p")]},
                             keys={"dir": str(tmp_path / "keys")},
                             nats={"url": "nats://127.0.0.1:4222", "startup_timeout": 10},
                             audit={"path": str(tmp_path / "a.jsonl"), "sink": "both",
                                    "jetstream": {"url": f"tls://127.0.0.1:{port}"}})
    try:
        with pytest.raises(ConfigError):
            await asyncio.wait_for(connect(settings, keys, name="authsvc-audit",
                                           servers=[settings.audit.jetstream.url]), 8)
    finally:
        server.close()
    assert received == []
