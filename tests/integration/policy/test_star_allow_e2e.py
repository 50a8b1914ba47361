"""A subscribe allow ending in ``*``, through ``authsvc serve`` and a real nats-server.

nats-server 2.15 lets allow ``tenants.acme.*`` accept ``SUB tenants.acme.>`` and delivers
every deeper subject to it. The grant authsvc mints carries the deny ``tenants.acme.*.>``
(``merge.with_seals``), so the reader receives one token after its prefix and nothing
deeper; the audit record's permissions are the ones the server enforces.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from tests.integration.conftest import INFO
from tests.support.deploy import Deployment
from tests.support.idp import SigningKey, mint

pytestmark = pytest.mark.integration

ISSUER = "https://idp.star.invalid"
KEY = SigningKey.rsa("k1")
SUBJECTS = ["tenants.acme.orders", "tenants.acme.orders.private.payroll", "tenants.acme.secret",
            "tenants.acme.secret.db-password", "tenants.beta.orders"]


@pytest.fixture(scope="module", params=["config", "operator"])
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp(f"star-{request.param}"), mode=request.param)
    writer = d.identity("writer")
    d.rules = [
        {"id": "tenant-reader",
         "match": {"source": "oidc", "issuer": ISSUER,
                   "claims": {"tenant": {"pattern": "^[a-z0-9-]{1,32}$"}}},
         "grant": {"account": "APP", "publish": {"allow": [INFO]},
                   "subscribe": {"allow": ["tenants.{{claims.tenant}}.*", "_INBOX.>"]}}},
        {"id": "secrets-guardrail", "effect": "deny", "match": {"source": "oidc"},
         "permissions": {"subscribe": ["tenants.*.secret"]}},
        {"id": "writer", "match": {"source": "nkey", "subject": writer.public_key},
         "grant": {"account": "APP", "publish": {"allow": ["tenants.>"]}}},
    ]
    d.settings_extra = {"identity": {"oidc": {"issuers": [
        {"issuer": ISSUER, "audiences": ["nats"], "keys": [KEY.jwk()], "algorithms": ["RS256"],
         "claims": {"tenant": "string"}}]}}}
    d.start()
    yield d
    d.stop()


def _token(tenant: str) -> str:
    now = int(time.time())
    return mint(KEY, {"iss": ISSUER, "sub": f"reader-{tenant}", "aud": "nats", "iat": now,
                      "exp": now + 600, "tenant": tenant})


async def test_a_broad_subscription_receives_one_token_after_the_prefix(
        deployment: Deployment) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    reader = await nats.connect(deployment.url, token=_token("acme"), error_cb=on_error,
                                allow_reconnect=False)
    writer = await nats.connect(deployment.url, allow_reconnect=False,
                                nkeys_seed_str=deployment.identity("writer").seed)
    got: set[str] = set()

    async def on_msg(msg: Any) -> None:
        got.add(str(msg.subject))

    try:
        await reader.subscribe("tenants.acme.>", cb=on_msg)
        await reader.flush()
        for _attempt in range(2):  # a lost first publish only ever removes subjects
            for subject in SUBJECTS:
                await writer.publish(subject, b"x")
            await writer.flush()
            await reader.flush()
            await asyncio.sleep(0.05)
        info = json.loads((await reader.request(INFO, b"", timeout=3)).data)["data"]
    finally:
        await reader.close()
        await writer.close()
    assert not any("permissions violation" in error for error in errors)  # SUB accepted
    assert got == {"tenants.acme.orders"}
    enforced = info["permissions"]["subscribe"]
    assert sorted(enforced["deny"]) == ["tenants.*.secret", "tenants.acme.*.>"]
    record = [r for r in deployment.audit() if r.get("decision") == "allow"
              and r["identity"]["principal"].endswith("#reader-acme")][-1]
    assert record["permissions"]["sub"] == {"allow": sorted(enforced["allow"]),
                                            "deny": sorted(enforced["deny"])}
