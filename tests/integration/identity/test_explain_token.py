"""``authsvc policy explain --token``: a real token, verified against a real issuer on
loopback (discovery, JWKS over HTTP, pyjwt-signed tokens) or a real AWS proof checked by
moto's STS, decided by the policy the settings name; the token itself is never printed."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.cli import main
from authsvc.clients.aws import sign_token
from tests.support.aws import MotoSts
from tests.support.idp import Issuer, SigningKey, mint

POLICY = """\
apiVersion: authsvc/v1
kind: Policy
rules:
  - id: tenant-users
    match:
      source: oidc
      groups: {contains_any: [users]}
      claims: {tenant: {pattern: "^[a-z]+$"}}
    grant:
      account: TENANTS
      ttl: 1h
      subscribe: {allow: ["tenants.{{claims.tenant}}.>"]}
  - id: lambda-orders
    match: {source: aws_iam, aws: {arn: "arn:aws:iam::*:role/orders-lambda"}}
    grant: {account: ORDERS, publish: {allow: [orders.v2.created]}}
"""


@pytest.fixture(scope="module")
def idp() -> Iterator[Issuer]:
    with Issuer(keys=[SigningKey.rsa("k1")]) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoSts]:
    sts = MotoSts(log=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield sts
    sts.stop()


@pytest.fixture
def settings(tmp_path: Path, idp: Issuer, moto: MotoSts) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    path = tmp_path / "authsvc.yaml"
    path.write_text(yaml.safe_dump({
        "policy": {"paths": ["policy.yaml"]},
        "identity": {
            "oidc": {"issuers": [{"issuer": idp.url, "audiences": ["nats"], "allow_http": True,
                                  "provider": "okta", "claims": {"tenant": "string"}}]},
            "aws_iam": {"server_id": "nats-test", "endpoints": moto.endpoints,
                        "allow_http": True}}}))
    return path


def claims(idp: Issuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.url, "sub": "00u1alice", "aud": "nats", "iat": now, "exp": now + 600,
            "groups": ["users"], "tenant": "acme", **changes}


def explain(settings: Path, token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, Any, str]:
    file = tmp_path / "token.jwt"
    file.write_text(token + "\n")
    code = main(["policy", "explain", "-c", str(settings), "--token", str(file),
                 "--format", "json", *extra])
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_a_good_token_is_verified_and_decided_as_serve_would(
        settings: Path, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = explain(settings, mint(idp.keys[0], claims(idp)), tmp_path, capsys)
    assert (code, report["decision"], report["account"]) == (0, "allow", "TENANTS")
    assert (report["input"], report["verified"], report["rules"]) == (
        "token", True, ["tenant-users"])
    assert report["identity"]["principal"] == f"oidc:{idp.url}#00u1alice"
    assert report["permissions"]["sub"]["allow"] == ["tenants.acme.>"]
    assert report["ttl_seconds"] <= 600  # capped by the token's exp, not the grant's 1h


@pytest.mark.parametrize(("changes", "reason"), [
    ({"aud": "someone-else"}, "token_audience_mismatch"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, "token_expired"),
])
def test_claims_the_verifier_refuses_stop_before_the_policy(
        changes: dict[str, Any], reason: str, settings: Path, idp: Issuer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    token = mint(idp.keys[0], claims(idp, **changes))
    code, report, _ = explain(settings, token, tmp_path, capsys)
    assert (code, report["stage"], report["reason"]) == (0, "identity", reason)
    assert (report["identity"], report["matched"], report["not_matched"]) == (None, [], [])


def test_a_token_signed_by_another_key_is_refused(
        settings: Path, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = mint(SigningKey.rsa("k1", bits=3072), claims(idp))  # right kid, wrong key
    code, report, _ = explain(settings, token, tmp_path, capsys)
    assert (code, report["reason"]) == (0, "token_signature_invalid")


def test_at_asks_about_the_time_a_token_was_valid(
        settings: Path, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    issued = int(time.time()) - 7200
    token = mint(idp.keys[0], claims(idp, iat=issued, exp=issued + 600))
    at = datetime.fromtimestamp(issued + 60, UTC).isoformat()
    code, report, _ = explain(settings, token, tmp_path, capsys, "--at", at)
    assert (code, report["decision"]) == (0, "allow")
    code, report, _ = explain(settings, token, tmp_path, capsys)
    assert report["reason"] == "token_expired"


def test_a_token_from_standard_input(settings: Path, idp: Issuer,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    token = mint(idp.keys[0], claims(idp, tenant="globex"))
    monkeypatch.setattr("sys.stdin", io.StringIO(token))
    assert main(["policy", "explain", "-c", str(settings), "--token", "-"]) == 0
    out = capsys.readouterr().out
    assert token not in out
    assert out.splitlines()[0] == "token -: allow TENANTS"


def test_an_unreachable_issuer_is_a_fault_not_a_decision(
        settings: Path, idp: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    idp.down = True
    try:
        code, report, _ = explain(settings, mint(idp.keys[0], claims(idp)), tmp_path, capsys)
    finally:
        idp.down = False
    assert code == 2
    assert [error["code"] for error in report["errors"]] == ["upstream_unavailable"]


def test_an_aws_proof_is_checked_by_sts_and_canonicalised(
        settings: Path, moto: MotoSts, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    token = sign_token(moto.role, server_id="nats-test", region="us-east-1")
    code, report, _ = explain(settings, token, tmp_path, capsys)
    assert (code, report["decision"], report["account"]) == (0, "allow", "ORDERS")
    # the assumed role becomes its role ARN; the role path is lost, as documented
    assert report["identity"]["attributes"]["arn"].endswith(":role/orders-lambda")
    forged = sign_token(moto.role, server_id="another-deployment", region="us-east-1")
    code, report, _ = explain(settings, forged, tmp_path, capsys)
    assert (code, report["stage"], report["reason"]) == (0, "identity", "sts_server_id_mismatch")
