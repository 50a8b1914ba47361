"""From a GetCallerIdentity answer to an identity, and the verifier's one fault-or-deny choice.

STS itself is exercised against moto in tests/integration/identity/test_aws_sts.py; these cover
what moto cannot produce: a federated-user caller (moto's GetFederationToken hands out a fixed
key that GetCallerIdentity does not map back to the federated user) and a host name that does
not resolve.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from botocore.credentials import Credentials

from authsvc.clients.aws import sign_token
from authsvc.domain import (
    Deny,
    DenyReason,
    Identity,
)
from authsvc.errors import UpstreamError
from authsvc.identity.aws_iam import AwsIamVerifier, caller_identity
from authsvc.identity.aws_proof import ProofRules, StsCall
from authsvc.identity.sts import Caller, HttpxSts, StsAnswer, StsHostUnknown, read_answer
from tests.unit.identity.test_oidc import request

DATA = Path(__file__).parents[2] / "data" / "aws"
HOST = "sts.eu-west-1.amazonaws.com"
FEDERATED = "arn:aws:sts::123456789012:federated-user/my-federated-user-name"


def federated_caller() -> Caller:
    body = (DATA / "aws-federated-user.xml").read_bytes()
    caller = read_answer(StsAnswer(200, "text/xml", body), HOST)
    assert isinstance(caller, Caller)
    return caller


def test_federated_users_are_refused_by_default() -> None:
    result = caller_identity(federated_caller(), HOST)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_CALLER_NOT_ALLOWED
    result = caller_identity(federated_caller(), HOST, session_name=True)
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_CALLER_NOT_ALLOWED


def test_federated_users_when_enabled() -> None:
    identity = caller_identity(federated_caller(), HOST, federated_users=True)
    assert isinstance(identity, Identity), identity
    assert identity.principal == f"aws:{FEDERATED}"
    assert identity.subject == "123456789012:my-federated-user-name"
    assert dict(identity.attributes) == {
        "arn": FEDERATED, "account": "123456789012",
        "user_id": "123456789012:my-federated-user-name", "arn_kind": "federated-user"}


@pytest.mark.parametrize(("arn", "user_id", "kind"), [
    ("arn:aws:iam::123456789012:user/division/alice", "AIDAEXAMPLEUSERID0001", "user"),
    ("arn:aws:sts::123456789012:assumed-role/orders/s-1", "AROAEXAMPLE:s-1", "role"),
    ("arn:aws:iam::123456789012:root", "123456789012", "root"),
])
def test_other_callers_do_not_depend_on_the_flag(arn: str, user_id: str, kind: str) -> None:
    for federated_users in (False, True):
        identity = caller_identity(Caller(arn, "123456789012", user_id), HOST,
                                   federated_users=federated_users)
        assert isinstance(identity, Identity) and identity.attributes["arn_kind"] == kind


class UnknownHostSts:
    """A poster for which every STS host name fails to resolve, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def post(self, call: StsCall) -> StsAnswer:
        self.calls += 1
        raise StsHostUnknown(f"STS {call.host}: host name does not resolve")


def proof(region: str) -> str:
    return sign_token(Credentials("ASIAEXAMPLEEXAMPLE12", "s", "t"), server_id="nats-test",
                      region=region)


async def test_a_client_chosen_host_that_does_not_resolve_is_a_denial() -> None:
    sts = UnknownHostSts()
    v = AwsIamVerifier(ProofRules(server_id="nats-test"), sts)
    result = await v.verify(request(proof("zz-fake-9")), now=datetime.now(UTC))
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_HOST_NOT_ALLOWED
    assert sts.calls == 1


@pytest.mark.parametrize("rules", [
    {"regions": frozenset({"eu-west-1"})},
    {"endpoints": {HOST: "https://vpce-0abc.sts.eu-west-1.vpce.amazonaws.com/"}},
], ids=["in regions", "in endpoints"])
async def test_a_configured_host_that_does_not_resolve_stays_a_fault(rules: Any) -> None:
    v = AwsIamVerifier(ProofRules(server_id="nats-test", **rules), UnknownHostSts())
    with pytest.raises(StsHostUnknown):
        await v.verify(request(proof("eu-west-1")), now=datetime.now(UTC))
    assert issubclass(StsHostUnknown, UpstreamError)  # unhandled, it fails closed as a fault


class FailingLookup(httpx.AsyncBaseTransport):
    """Fails every request the way httpx does when getaddrinfo fails with ``errno``:
    ``httpx.ConnectError`` <- ``httpcore.ConnectError`` <- ``socket.gaierror``."""

    def __init__(self, errno: int) -> None:
        self.errno = errno

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            try:
                raise socket.gaierror(self.errno, "lookup failed")
            except socket.gaierror as exc:
                raise httpcore.ConnectError(exc) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc


def call() -> StsCall:
    return StsCall(url=f"https://{HOST}/", host=HOST, headers=(), body=b"",
                   signed_at=datetime.now(UTC), key_fingerprint="sha256:0")


@pytest.mark.parametrize(("errno", "unknown"), [
    (socket.EAI_NONAME, True), (socket.EAI_AGAIN, False), (socket.EAI_FAIL, False)])
async def test_the_poster_tells_no_such_name_from_other_lookup_failures(
        errno: int, unknown: bool) -> None:
    sts = HttpxSts(client=httpx.AsyncClient(transport=FailingLookup(errno)))
    with pytest.raises(UpstreamError) as caught:
        await sts.post(call())
    assert isinstance(caught.value, StsHostUnknown) == unknown
    await sts.aclose()


class AnsweringSts:
    """A poster that answers every call with moto's captured assumed-role answer."""

    def __init__(self) -> None:
        self.calls: list[StsCall] = []

    async def post(self, call: StsCall) -> StsAnswer:
        self.calls.append(call)
        return StsAnswer(200, "text/xml", (DATA / "moto-assumed-role.xml").read_bytes())


@pytest.mark.parametrize(("max_token_bytes", "reason"), [
    (16 * 1024, None), (8 * 1024, DenyReason.TOKEN_TOO_LARGE)])
async def test_a_long_session_token_takes_the_configured_token_size(
        max_token_bytes: int, reason: DenyReason | None) -> None:
    # 10,000 characters: over the 4,096 every other header value is held to and over the
    # default token size, in a token of ~14 KB; raising max_token_bytes (docs/identity.md)
    # is what lets it through, so the verifier must hand its own size to the proof checks.
    creds = Credentials("ASIAEXAMPLEEXAMPLE12", "s", "F" * 10_000)
    sts = AnsweringSts()
    v = AwsIamVerifier(ProofRules(server_id="nats-test"), sts, max_token_bytes=max_token_bytes)
    tok = sign_token(creds, server_id="nats-test", region="eu-west-1")
    result = await v.verify(request(tok), now=datetime.now(UTC))
    if reason is None:
        assert isinstance(result, Identity), result
        assert [dict(c.headers)["x-amz-security-token"] for c in sts.calls] == ["F" * 10_000]
    else:
        assert isinstance(result, Deny) and result.reason == reason and not sts.calls
