"""AWS IAM clients through a real nats-server, ``authsvc serve`` and moto's STS on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from authsvc.clients.aws import AwsIamToken, sign_token
from authsvc.domain import DenyReason
from authsvc.natsconf.process import free_port
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.support.aws import ROLE_ARN, USER_ARN, MotoSts
from tests.support.deploy import Deployment
from tests.support.rawnats import raw_connect

INFO = "$SYS.REQ.USER.INFO"
SERVER_ID = "nats-e2e"
DOWN_REGION = "eu-west-1"  # its endpoint is a closed port: STS unreachable


@pytest.fixture(scope="module", params=["config", "operator"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, MotoSts]]:
    root = tmp_path_factory.mktemp(f"aws-{request.param}")
    moto = MotoSts(log=root / "moto.log").start()
    endpoints = {**moto.endpoints,
                 f"sts.{DOWN_REGION}.amazonaws.com": f"http://127.0.0.1:{free_port()}/"}
    d = Deployment(root, mode=request.param, settings_extra={"identity": {"aws_iam": {
        "server_id": SERVER_ID, "endpoints": endpoints, "allow_http": True}}})
    d.rules = [
        {"id": "orders-lambdas", "match": {"source": "aws_iam", "aws": {
            "arn": "arn:aws:iam::123456789012:role/orders-*", "account": "123456789012"}},
         "grant": {"account": "APP", "ttl": "10m", "publish": {"allow": ["orders.>", INFO]},
                   "subscribe": {"allow": ["_INBOX.>"]}}},
        {"id": "alice", "match": {"source": "aws_iam", "aws": {"arn": USER_ARN}},
         "grant": {"account": "OPS", "publish": {"allow": [INFO]},
                   "subscribe": {"allow": ["_INBOX.>"]}}},
    ]
    d.start()
    try:
        yield d, moto
    finally:
        d.stop()
        moto.stop()


async def account_of(nc: Any) -> str:
    try:
        reply = await nc.request(INFO, b"", timeout=3)
        return str(json.loads(reply.data)["data"]["account_name"])
    finally:
        await nc.close()


async def last_record(d: Deployment, count: int) -> dict[str, Any]:
    records = await asyncio.to_thread(d.wait_audit, count)
    return records[-1]


async def test_lambda_role_lands_in_its_account_with_a_nonce_bound_token(
        world: tuple[Deployment, MotoSts]) -> None:
    d, moto = world
    auth = AwsIamToken(server_id=SERVER_ID, region="us-east-1", credentials=lambda: moto.role)
    sent: list[str] = []

    def token() -> str:
        sent.append(auth.token())
        return sent[-1]

    before = len(d.audit())
    nc = await nats.connect(d.url, token=token, signature_cb=auth.sign_nonce,
                            allow_reconnect=False, connect_timeout=5)
    assert await account_of(nc) == "APP"
    record = await last_record(d, before + 1)
    assert record["decision"] == "allow" and record["rule_ids"] == ["orders-lambdas"]
    assert record["identity"]["principal"] == f"aws:{ROLE_ARN}"
    assert sent[0] not in json.dumps(record) and moto.role.token not in json.dumps(record)

    # The captured token, replayed on another connection (with or without a sig): refused.
    throwaway = KeyPair.create(Prefix.USER)
    for with_sig in (True, False):
        def replay(info: dict[str, Any], with_sig: bool = with_sig) -> dict[str, Any]:
            sig = base64.b64encode(throwaway.sign(info["nonce"].encode())).decode()
            return {"auth_token": sent[0], **({"sig": sig} if with_sig else {})}

        reply = await raw_connect("127.0.0.1", d.port, replay)
        assert reply.startswith("-ERR")
        record = await last_record(d, before + 2 + (not with_sig))
        assert record["reason"] == DenyReason.STS_NONCE_MISMATCH


async def test_plain_token_client_lands_in_its_account(
        world: tuple[Deployment, MotoSts]) -> None:
    d, moto = world
    token = sign_token(moto.user, server_id=SERVER_ID)  # unbound: global endpoint, no sig
    nc = await nats.connect(d.url, user="aws", password=token, allow_reconnect=False,
                            connect_timeout=5)
    assert await account_of(nc) == "OPS"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"server_id": "nats-staging"}, DenyReason.STS_SERVER_ID_MISMATCH),
    ({"region": DOWN_REGION}, DenyReason.UPSTREAM_UNAVAILABLE),
])
async def test_refusals_carry_their_reason(world: tuple[Deployment, MotoSts],
                                           kwargs: dict[str, Any], reason: DenyReason) -> None:
    d, moto = world
    token = sign_token(moto.role, **{"server_id": SERVER_ID, "region": "us-east-1", **kwargs})
    before = len(d.audit())
    started = time.monotonic()
    with pytest.raises(NatsError):
        await nats.connect(d.url, token=token, allow_reconnect=False, connect_timeout=5)
    assert time.monotonic() - started < 1.5  # refused, not timed out (callout timeout 2 s)
    record = await last_record(d, before + 1)
    assert record["reason"] == reason
