"""A restart with rotated keys records key.changed with the old and new public keys.

The real service runs three times over one audit directory: with the first keys, again
with the same keys (no change), then after the issuer key (and, in operator mode, the APP
account's signing key) was replaced and nats-server's config regenerated, as an operator
rotating keys would. A client connects each time, so the keys recorded are the keys in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats
import pytest

from authsvc.audit.keychange import KEY_CHANGED_TYPE
from authsvc.cli import main
from authsvc.natsconf.keystore import KeyStore
from tests.support.deploy import Deployment


def _deployment(tmp: Path, mode: str) -> Deployment:
    d = Deployment(tmp, mode=mode, xkey=True)
    d.rules = [{"id": "app", "match": {"source": "nkey", "subject": d.identity("app").public_key},
                "grant": {"account": "APP", "subscribe": {"allow": ["x.>"]}}}]
    return d


def _public(d: Deployment) -> dict[str, str]:
    store = KeyStore(d.root / "keys")
    keys = {"issuer": store.issuer().public_key, "xkey": store.xkey().public_key}
    if d.mode == "operator":
        keys["account_signing.APP"] = store.account_signing("APP").public_key
    return keys


async def _run(d: Deployment, *, with_server: bool) -> None:
    """Start the service (and nats-server), admit one client, stop cleanly."""
    if d.service_log.exists():
        d.service_log.unlink()  # start_service waits for its own "serving" line
    if with_server:
        d.start()
    else:
        d.start_service()
    try:
        nc = await nats.connect(d.url, nkeys_seed_str=d.identity("app").seed,
                                allow_reconnect=False, connect_timeout=5)
        assert nc.is_connected  # the recorded keys are the keys that admitted it
        await nc.close()
        assert d.stop_service() == 0
    finally:
        if with_server:
            d.stop()


def _changes(d: Deployment) -> list[dict[str, Any]]:
    return [r for r in d.audit_events() if r["type"] == KEY_CHANGED_TYPE]


@pytest.mark.parametrize("mode", ["config", "operator"])
async def test_rotated_keys_are_recorded_at_the_next_start(tmp_path: Path, mode: str) -> None:
    d = _deployment(tmp_path, mode)
    d.start(service=False)
    try:
        await _run(d, with_server=False)
        await _run(d, with_server=False)
    finally:
        d.stop()
    assert _changes(d) == []  # same keys twice: nothing changed
    old = _public(d)

    (d.root / "keys" / "issuer.nk").unlink()
    if mode == "operator":
        (d.root / "keys" / "accounts" / "APP.sk.nk").unlink()
    await _run(d, with_server=True)  # new keys made, nats-server config regenerated
    new = _public(d)
    assert new["issuer"] != old["issuer"]

    [changed] = _changes(d)
    rotated = sorted(role for role in old if old[role] != new[role])
    assert rotated == (["account_signing.APP", "issuer"] if mode == "operator" else ["issuer"])
    assert changed["changes"] == [{"role": role, "change": "replaced", "old": old[role],
                                   "new": new[role]} for role in rotated]
    starts = [r for r in d.audit_events() if r["type"] == "service.start"]
    assert len(starts) == 3
    assert starts[-1]["seq"] == changed["seq"] + 1 and starts[-1]["keys"]["issuer"] == new["issuer"]
    assert starts[0]["keys"]["issuer"] == old["issuer"]
    assert main(["audit", "verify", str(d.root), "--keys-dir", str(d.root / "keys")]) == 0
