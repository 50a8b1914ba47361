"""nats-server's ``$SYS.ACCOUNT.CLIENT.AUTH.ERR`` advisories land in the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.cli import main
from authsvc.domain import DenyReason
from tests.support.deploy import Deployment


@pytest.mark.parametrize("mode", ["config", "operator"])
async def test_refused_connect_is_recorded_from_the_server_side(tmp_path: Path,
                                                                mode: str) -> None:
    d = Deployment(tmp_path, mode=mode, xkey=True)
    d.rules = [{"id": "ok", "match": {"source": "nkey", "subject": d.identity("ok").public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x.>"]}}}]
    d.start()
    try:
        with pytest.raises(NatsError):
            await nats.connect(d.url, nkeys_seed_str=d.identity("stranger").seed,
                               allow_reconnect=False, connect_timeout=3, name="stranger")
        events: list[dict[str, object]] = []
        for _ in range(100):
            events = [r for r in d.audit_events() if r["type"] == "nats.auth_error"]
            if events:
                break
            await asyncio.sleep(0.05)
    finally:
        d.stop()
    [deny] = [r for r in d.audit() if r["decision"] == "deny"]
    assert deny["reason"] == DenyReason.NO_MATCHING_RULE
    assert len(events) == 1
    event = events[0]
    # join keys between our decision and the server's advisory: server id + client cid
    client, server = event["nats_client"], event["nats_server"]
    assert (client["id"], server["id"]) == (deny["client"]["cid"], deny["server"]["id"])  # type: ignore[index]
    assert client["name"] == "stranger"  # type: ignore[index]
    assert "jwt" not in client  # type: ignore[operator]
    assert main(["audit", "verify", str(tmp_path), "--keys-dir", str(tmp_path / "keys")]) == 0
