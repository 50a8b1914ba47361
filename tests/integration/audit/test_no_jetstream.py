"""``audit stream-init`` and ``audit fetch`` against servers the audit stream cannot live on.

A nats-server without JetStream answers the JetStream API with no responders; one with
JetStream that the callout account may not use answers ``err_code`` 10039. Both used to
surface as a client detail (``failed: NoRespondersError``, ``failed with status 503``); now
they are one refusal (``NoJetStream``) that says what to do, exit status 2. Fetching a
stream that does not exist yet is ``StreamMissing`` (it was a 503 too).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from authsvc.cli import main
from authsvc.commands.audit_stream import NoJetStream, StreamMissing, require_jetstream
from authsvc.natsconf.keystore import KeyStore
from authsvc.server import connect
from authsvc.settings import load_settings
from tests.support.deploy import Deployment


def _deployment(tmp: Path, mode: str, **options: Any) -> Deployment:
    d = Deployment(tmp, mode=mode, **options)
    d.rules = [{"id": "app", "match": {"source": "nkey", "subject": d.identity("c").public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x.>"]}}}]
    return d


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def _probe(d: Deployment, *, need_stream: bool) -> None:
    """What the commands ask first, over the service identity's own connection."""
    settings = load_settings(d.settings_file)
    conn = await connect(settings, KeyStore(settings.keys.dir), max_reconnect_attempts=0)
    try:
        await require_jetstream(conn, where=d.url, account=settings.nats.callout_account,
                                need_stream=need_stream)
    finally:
        await conn.close()


def _jetstream(store: Path, *, for_callout_account: bool) -> Any:
    def edit(body: dict[str, Any]) -> None:
        body["jetstream"] = {"store_dir": str(store)}  # on the server
        if for_callout_account:  # what nats-config --jetstream-dir writes in config mode
            body["accounts"]["AUTH"]["jetstream"] = "enabled"
    return edit


@pytest.mark.parametrize("mode", ["config", "operator"])
async def test_a_server_without_jetstream_is_refused_as_such_and_exits_2(
        tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = _deployment(tmp_path / "d", mode).start(service=False)
    try:
        for need_stream in (False, True):
            with pytest.raises(NoJetStream):
                await _probe(d, need_stream=need_stream)
        assert await _cli("audit", "stream-init", "-c", str(d.settings_file)) == 2
        assert await _cli("audit", "fetch", "-c", str(d.settings_file),
                          "--out", str(tmp_path / "out")) == 2
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
        assert "Traceback" not in capsys.readouterr().err
    finally:
        d.stop()


async def test_jetstream_the_callout_account_may_not_use_is_refused_as_none(
        tmp_path: Path) -> None:
    edit = _jetstream(tmp_path / "js", for_callout_account=False)
    d = _deployment(tmp_path / "d", "config", config_edit=edit).start(service=False)
    try:
        with pytest.raises(NoJetStream):
            await _probe(d, need_stream=False)
        assert await _cli("audit", "stream-init", "-c", str(d.settings_file)) == 2
    finally:
        d.stop()


async def test_fetching_a_stream_that_does_not_exist_yet_exits_2(tmp_path: Path) -> None:
    edit = _jetstream(tmp_path / "js", for_callout_account=True)
    d = _deployment(tmp_path / "d", "config", config_edit=edit).start(service=False)
    try:
        with pytest.raises(StreamMissing):
            await _probe(d, need_stream=True)
        fetch = ("audit", "fetch", "-c", str(d.settings_file), "--out", str(tmp_path / "out"))
        assert await _cli(*fetch) == 2
        assert await _cli("audit", "stream-init", "-c", str(d.settings_file)) == 0
        await _probe(d, need_stream=True)
        assert await _cli(*fetch) == 0  # an empty stream: nothing to write, nothing wrong
    finally:
        d.stop()
