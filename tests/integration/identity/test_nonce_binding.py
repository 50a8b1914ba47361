"""What nats-server forwards to the callout that a proof could be bound to (docs/identity.md).

A client that sends a CONNECT ``sig`` (with or without ``nkey``) next to its token makes the
server put the nonce of *this* connection into ``client_info.nonce`` of the callout request;
without a ``sig`` the nonce is absent. That is what makes nonce-bound AWS proofs possible.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.support.deploy import Deployment
from tests.support.rawnats import raw_connect

THROWAWAY = KeyPair.create(Prefix.USER)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("nonce"), xkey=False, settings_extra={
        "nats": {"auth_timeout": 0.5}}, rules=[
        {"id": "x", "match": {"source": "nkey", "subject": THROWAWAY.public_key},
         "grant": {"account": "APP", "subscribe": {"allow": ["a"]}}}])
    d.start(service=False)  # we play the callout service ourselves, to read raw requests
    yield d
    d.stop()


def _signed(info: dict[str, Any], *, nkey: bool) -> dict[str, Any]:
    fields = {"auth_token": "token", "sig": base64.b64encode(
        THROWAWAY.sign(info["nonce"].encode())).decode()}
    return {**fields, "nkey": THROWAWAY.public_key} if nkey else fields


@pytest.mark.parametrize(("build", "bound"), [
    (lambda info: _signed(info, nkey=False), True),
    (lambda info: _signed(info, nkey=True), True),
    (lambda info: {"auth_token": "token"}, False),
], ids=["token+sig", "token+nkey+sig", "token-only"])
async def test_server_forwards_its_nonce_only_with_a_sig(server: Deployment, build: Any,
                                                         bound: bool) -> None:
    seen: list[dict[str, Any]] = []
    nc = await nats.connect(server.url, nkeys_seed_str=KeyStore(server.root / "keys")
                            .service().seed)

    async def capture(msg: Any) -> None:
        part = msg.data.decode().split(".")[1]
        seen.append(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    await nc.subscribe("$SYS.REQ.USER.AUTH", cb=capture)
    await nc.flush()
    sent: dict[str, str] = {}

    def connect_fields(info: dict[str, Any]) -> dict[str, Any]:
        sent["nonce"] = info["nonce"]
        fields: dict[str, Any] = build(info)
        return fields

    try:
        await raw_connect("127.0.0.1", server.port, connect_fields, timeout=3)
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
    client_info = seen[0]["nats"]["client_info"]
    assert (client_info.get("nonce") == sent["nonce"]) is bound
    assert bound or "nonce" not in client_info
