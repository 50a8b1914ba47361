"""The AWS proof checks before any STS call: every trick is refused with its own code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import Credentials

from authsvc.clients.aws import sign_token
from authsvc.domain import Deny, DenyReason
from authsvc.identity.aws_proof import FORM_CONTENT_TYPE, ProofRules, StsCall, rebuild, sts_region
from authsvc.identity.aws_token import StsProof, decode_proof
from tests.support.aws import from_parts, token_parts

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CREDS = Credentials("ASIAEXAMPLEEXAMPLE12", "secret-never-sent", "session-token/+=")
RULES = ProofRules(server_id="nats-test")
Doc = dict[str, Any]


def token(**kwargs: Any) -> str:
    args = {"server_id": "nats-test", "region": "eu-west-1", "now": NOW, **kwargs}
    return sign_token(CREDS, **args)


def check(tok: str, rules: ProofRules = RULES, *, nonce: str = "",
          now: datetime = NOW) -> StsCall | Deny:
    proof = decode_proof(tok)
    assert isinstance(proof, StsProof)
    return rebuild(proof, rules, nonce=nonce, now=now)


def edited(change: Callable[[Doc], None], **kwargs: Any) -> str:
    doc = token_parts(token(**kwargs))
    change(doc)
    return from_parts(doc)


def test_a_good_proof_is_rebuilt_from_trusted_parts() -> None:
    call = check(token())
    assert isinstance(call, StsCall)
    assert call.url == "https://sts.eu-west-1.amazonaws.com/"
    assert call.body == b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = dict(call.headers)
    assert headers["Host"] == "sts.eu-west-1.amazonaws.com"
    assert headers["Content-Type"] == FORM_CONTENT_TYPE
    assert headers["x-authsvc-server-id"] == "nats-test"
    assert call.signed_at == NOW
    assert "ASIAEXAMPLE" not in call.key_fingerprint
    assert "secret-never-sent" not in token()


def test_global_endpoint_and_configured_endpoint() -> None:
    call = check(token(region=None), ProofRules(server_id="nats-test", endpoints={
        "sts.amazonaws.com": "http://127.0.0.1:9/"}))
    assert isinstance(call, StsCall) and call.url == "http://127.0.0.1:9/"
    assert dict(call.headers)["Host"] == "sts.amazonaws.com"


def set_header(name: str, value: str) -> Callable[[Doc], None]:
    return lambda doc: doc["headers"].__setitem__(name, value)


def drop_signed(name: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        auth = doc["headers"]["Authorization"]
        doc["headers"]["Authorization"] = auth.replace(f";{name}", "").replace(f"{name};", "")
    return change


BODY = "Action=GetCallerIdentity&Version=2011-06-15"
CASES: list[tuple[str, Callable[[Doc], None], DenyReason]] = [
    ("other action", lambda d: d.update(body="Action=AssumeRole&Version=2011-06-15"),
     DenyReason.STS_ACTION_NOT_ALLOWED),
    ("extra parameter", lambda d: d.update(body=BODY + "&RoleArn=x"),
     DenyReason.STS_ACTION_NOT_ALLOWED),
    ("repeated action", lambda d: d.update(body=BODY + "&Action=AssumeRole"),
     DenyReason.STS_PARAMETER_DUPLICATE),
    ("case-variant repeat", lambda d: d.update(body=BODY + "&action=AssumeRole"),
     DenyReason.STS_PARAMETER_DUPLICATE),
    ("case-variant name", lambda d: d.update(body="action=GetCallerIdentity&Version=2011-06-15"),
     DenyReason.STS_ACTION_NOT_ALLOWED),
    ("reordered body", lambda d: d.update(body="Version=2011-06-15&Action=GetCallerIdentity"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("other version", lambda d: d.update(body="Action=GetCallerIdentity&Version=2099-01-01"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("empty body", lambda d: d.update(body=""), DenyReason.STS_REQUEST_MALFORMED),
    ("look-alike host", lambda d: d.update(host="sts.eu-west-1.amazonaws.com.evil.example"),
     DenyReason.STS_HOST_NOT_ALLOWED),
    ("other service", lambda d: d.update(host="iam.amazonaws.com"),
     DenyReason.STS_HOST_NOT_ALLOWED),
    ("address and port", lambda d: d.update(host="127.0.0.1:5000"),
     DenyReason.STS_HOST_NOT_ALLOWED),
    ("upper case host", lambda d: d.update(host="STS.eu-west-1.amazonaws.com"),
     DenyReason.STS_HOST_NOT_ALLOWED),
    ("fullwidth digit in host", lambda d: d.update(host="sts.eu-west-\uff11.amazonaws.com"),
     DenyReason.STS_HOST_NOT_ALLOWED),
    ("host region differs from scope", lambda d: d.update(host="sts.us-west-2.amazonaws.com"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("extra header", set_header("X-Forwarded-Host", "evil.example"),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("client-chosen host header", set_header("Host", "evil.example"),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("json content type", set_header("Content-Type", "application/json"),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("unsigned allowed header", set_header("Content-Type", FORM_CONTENT_TYPE),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("header injection", set_header("X-Amz-Date", "20261124T120000Z\r\nX-Evil: 1"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("wrong server id", set_header("X-Authsvc-Server-Id", "nats-other"),
     DenyReason.STS_SERVER_ID_MISMATCH),
    ("no server id", lambda d: d["headers"].pop("X-Authsvc-Server-Id"),
     DenyReason.STS_SERVER_ID_MISMATCH),
    ("unsigned server id", drop_signed("x-authsvc-server-id"), DenyReason.STS_SERVER_ID_MISMATCH),
    ("signs a header it does not send", lambda d: d["headers"].pop("X-Amz-Security-Token"),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("two SignedHeaders", set_header("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE"
     "EXAMPLE12/20261124/eu-west-1/sts/aws4_request, SignedHeaders=host, SignedHeaders=host;"
     "x-amz-date, Signature=" + "0" * 64), DenyReason.STS_REQUEST_MALFORMED),
    ("sigv4a", lambda d: d["headers"].update(Authorization=d["headers"]["Authorization"]
     .replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")), DenyReason.STS_REQUEST_MALFORMED),
    ("other service scope", lambda d: d["headers"].update(Authorization=d["headers"][
     "Authorization"].replace("/sts/", "/iam/")), DenyReason.STS_REQUEST_MALFORMED),
    ("date differs from scope", set_header("X-Amz-Date", "20261123T235959Z"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("not a date", set_header("X-Amz-Date", "2026-11-24T12:00:00Z"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("impossible date", set_header("X-Amz-Date", "20261124T250000Z"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("arabic-indic digit in date", set_header("X-Amz-Date", "2026112\u0664T120000Z"),
     DenyReason.STS_REQUEST_MALFORMED),
    ("unsigned payload hash", set_header("X-Amz-Content-Sha256", "0" * 64),
     DenyReason.STS_HEADER_NOT_ALLOWED),
    ("wrong payload hash", lambda d: (set_header("X-Amz-Content-Sha256", "0" * 64)(d), d[
     "headers"].update(Authorization=d["headers"]["Authorization"].replace(
         "SignedHeaders=host;", "SignedHeaders=host;x-amz-content-sha256;"))),
     DenyReason.STS_REQUEST_MALFORMED),
    ("repeated signed header", lambda d: d["headers"].update(Authorization=d["headers"][
     "Authorization"].replace("SignedHeaders=host;", "SignedHeaders=host;host;")),
     DenyReason.STS_PARAMETER_DUPLICATE),
]


@pytest.mark.parametrize(("change", "reason"), [(c, r) for _, c, r in CASES],
                         ids=[name for name, _, _ in CASES])
def test_tampered_proofs_are_refused_before_sts(change: Callable[[Doc], None],
                                                reason: DenyReason) -> None:
    result = check(edited(change))
    assert isinstance(result, Deny)
    assert result.reason == reason, result.detail


@pytest.mark.parametrize(("signed_at", "reason"), [
    (NOW - timedelta(minutes=15, seconds=1), DenyReason.STS_REQUEST_STALE),
    (NOW - timedelta(minutes=14, seconds=59), None),
    (NOW + timedelta(seconds=59), None),
    (NOW + timedelta(minutes=2), DenyReason.STS_REQUEST_STALE),
])
def test_freshness_window(signed_at: datetime, reason: DenyReason | None) -> None:
    result = check(token(now=signed_at))
    assert (result.reason if isinstance(result, Deny) else None) == reason


def test_a_shorter_max_age_is_honoured() -> None:
    rules = ProofRules(server_id="nats-test", max_age=timedelta(minutes=5))
    result = check(token(now=NOW - timedelta(minutes=6)), rules)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_REQUEST_STALE


@pytest.mark.parametrize(("rules", "configured"), [
    (ProofRules(server_id="nats-test"), False),
    (ProofRules(server_id="nats-test", regions=frozenset({"eu-west-1"})), True),
    (ProofRules(server_id="nats-test", endpoints={
        "sts.eu-west-1.amazonaws.com": "https://vpce.example/"}), True),
])
def test_whether_the_deployment_named_the_host(rules: ProofRules, configured: bool) -> None:
    call = check(token(), rules)
    assert isinstance(call, StsCall) and call.host_configured == configured


def test_region_allow_list() -> None:
    rules = ProofRules(server_id="nats-test", regions=frozenset({"us-east-1"}))
    result = check(token(region="eu-west-1"), rules)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_HOST_NOT_ALLOWED
    assert isinstance(check(token(region=None), rules), StsCall)


@pytest.mark.parametrize(("bound_to", "connection", "require", "reason"), [
    ("nonce-1", "nonce-1", False, None),
    ("nonce-1", "nonce-2", False, DenyReason.STS_NONCE_MISMATCH),
    ("nonce-1", "", False, DenyReason.STS_NONCE_MISMATCH),
    (None, "nonce-2", False, None),
    (None, "nonce-2", True, DenyReason.STS_NONCE_MISMATCH),
    ("nonce-2", "nonce-2", True, None),
])
def test_nonce_binding(bound_to: str | None, connection: str, require: bool,
                       reason: DenyReason | None) -> None:
    rules = ProofRules(server_id="nats-test", require_nonce=require)
    result = check(token(nonce=bound_to), rules, nonce=connection)
    assert (result.reason if isinstance(result, Deny) else None) == reason


def test_unsigned_nonce_header_is_refused() -> None:
    result = check(edited(drop_signed("x-authsvc-nonce"), nonce="n-1"), nonce="n-1")
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_HEADER_NOT_ALLOWED


def long_session_token(length: int, **kwargs: Any) -> str:
    creds = Credentials("ASIAEXAMPLEEXAMPLE12", "secret-never-sent", "F" * length)
    args = {"server_id": "nats-test", "region": "eu-west-1", "now": NOW, **kwargs}
    return sign_token(creds, **args)


@pytest.mark.parametrize("length", [4_097, 6_000, 20_000])
def test_a_session_token_may_take_the_configured_token_size(length: int) -> None:
    # AWS sets no maximum on session tokens; the docs' remedy for long ones is raising
    # max_token_bytes, so no smaller cap of the proof's own may refuse them.
    proof = decode_proof(long_session_token(length), max_bytes=64 * 1024)
    assert isinstance(proof, StsProof)
    call = rebuild(proof, RULES, nonce="", now=NOW, max_token_bytes=64 * 1024)
    assert isinstance(call, StsCall), call
    assert dict(call.headers)["x-amz-security-token"] == "F" * length


def test_a_session_token_beyond_the_configured_size_is_refused() -> None:
    proof = decode_proof(long_session_token(6_000), max_bytes=64 * 1024)
    assert isinstance(proof, StsProof)
    result = rebuild(proof, RULES, nonce="", now=NOW, max_token_bytes=5_999)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_REQUEST_MALFORMED
    assert "F" * 16 not in result.detail  # a session token is a credential: never in audit


@pytest.mark.parametrize("header", ["X-Amz-Date", "X-Authsvc-Server-Id", "Authorization"])
def test_other_header_values_stay_capped_whatever_the_token_size(header: str) -> None:
    proof = decode_proof(edited(set_header(header, "1" * 4_097)), max_bytes=64 * 1024)
    assert isinstance(proof, StsProof)
    result = rebuild(proof, RULES, nonce="", now=NOW, max_token_bytes=64 * 1024)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_REQUEST_MALFORMED


@pytest.mark.parametrize(("host", "region"), [
    ("sts.amazonaws.com", "us-east-1"), ("sts.eu-central-1.amazonaws.com", "eu-central-1"),
    ("sts-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
    ("sts.cn-north-1.amazonaws.com.cn", "cn-north-1"), ("sts.cn-north-1.amazonaws.com", None),
    ("sts.eu-west-1.amazonaws.com.cn", None), ("sts.eu-west-1.amazonaws.comx", None),
    ("xsts.eu-west-1.amazonaws.com", None), ("sts.eu-west-1.amazonaws.com.", None),
    # Unicode look-alikes: \d takes fullwidth and Arabic-Indic digits, and [a-z] under
    # IGNORECASE the Kelvin sign; the patterns are plain ASCII classes, so none passes.
    ("sts.eu-west-\uff11.amazonaws.com", None), ("sts.eu-west-\u0661.amazonaws.com", None),
    ("sts.eu-west-1\u0661.amazonaws.com", None), ("sts.eu-\u212aest-1.amazonaws.com", None),
])
def test_sts_hosts(host: str, region: str | None) -> None:
    assert sts_region(host) == region
