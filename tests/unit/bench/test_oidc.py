"""The ``authsvc-oidc`` bench scenario's tokens: distinct, accepted by authsvc's verifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from authsvc.domain import ClientInfo, ConnectOptions, ConnectRequest, Identity, Secret, ServerInfo
from authsvc.policy.globs import Glob
from authsvc.settings_identity import IdentitySettings
from authsvc.verifiers import build_oidc
from bench.loadgen import TokenPoolCredentials
from bench.oidc import SUBJECT_GLOB, BenchIssuer, issuer_settings
from bench.wire import ServerInfo as WireInfo


def test_pool_hands_out_each_token_in_turn() -> None:
    pool = TokenPoolCredentials(["a", "b", "c"])
    info = WireInfo(server_id="N", nonce=None, auth_required=True, max_payload=1 << 20)
    assert [pool.fields(info)["auth_token"] for _ in range(4)] == ["a", "b", "c", "a"]


async def test_minted_tokens_verify_with_the_settings_the_bench_writes(tmp_path: Path) -> None:
    issuer = BenchIssuer.create(tmp_path)
    tokens = issuer.mint_tokens(count=3)
    assert len(set(tokens)) == 3
    identity = issuer_settings("http://127.0.0.1:9/jwks.json")
    block = identity["oidc"]["issuers"][0]  # type: ignore[index]
    del block["jwks_uri"]  # the same keys, given statically: no server needed here
    block["keys"] = json.loads((issuer.jwks_dir / "jwks.json").read_text())["keys"]
    verifier = build_oidc(IdentitySettings.model_validate(identity).oidc)
    now = datetime.now(UTC)
    for index, token in enumerate(tokens):
        request = ConnectRequest(server=ServerInfo(id="N"), user_nkey="U", client=ClientInfo(),
                                 connect=ConnectOptions(auth_token=Secret(token)),
                                 request_id="r", issued_at=now, expires_at=now)
        found = await verifier.verify(request, now=now)
        assert isinstance(found, Identity) and found.subject == f"bench-{index}"
        assert Glob(SUBJECT_GLOB).matches(found.subject)
