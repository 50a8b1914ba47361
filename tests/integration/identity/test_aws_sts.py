"""The AWS IAM verifier against moto's STS on loopback, which checks SigV4 signatures."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import Credentials

from authsvc.clients.aws import sign_token
from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    Secret,
    ServerInfo,
)
from authsvc.errors import UpstreamError
from authsvc.identity.aws_iam import AwsIamVerifier
from authsvc.identity.aws_proof import ProofRules, StsCall
from authsvc.identity.sts import HttpxSts, StsAnswer
from authsvc.natsconf.process import free_port
from tests.support.aws import ACCOUNT, ROLE_ARN, USER_ARN, MotoSts, from_parts, token_parts


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoSts]:
    sts = MotoSts(log=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield sts
    sts.stop()


class CountingSts:
    """The real HTTP poster, counting the requests that reach STS."""

    def __init__(self, inner: HttpxSts) -> None:
        self.inner, self.calls = inner, 0

    async def post(self, call: StsCall) -> StsAnswer:
        self.calls += 1
        return await self.inner.post(call)


@pytest.fixture
async def sts() -> AsyncIterator[CountingSts]:
    poster = HttpxSts(timeout=1.0)
    yield CountingSts(poster)
    await poster.aclose()


def verifier(moto: MotoSts, sts: Any, *, session_name: bool = False,
             max_token_bytes: int = 8 * 1024, **rules: Any) -> AwsIamVerifier:
    return AwsIamVerifier(ProofRules(server_id="nats-test", endpoints=moto.endpoints, **rules),
                          sts, session_name=session_name, max_token_bytes=max_token_bytes)


def request(token: str, *, nonce: str = "", password: bool = False) -> ConnectRequest:
    secret = Secret(token)
    connect = ConnectOptions(password=secret) if password else ConnectOptions(auth_token=secret)
    now = datetime.now(UTC)
    return ConnectRequest(server=ServerInfo(id="N1"), user_nkey="U2",
                          client=ClientInfo(nonce=nonce), connect=connect, request_id="r",
                          issued_at=now, expires_at=now)


async def verify(v: AwsIamVerifier, token: str, **kwargs: Any) -> Identity | Deny | None:
    return await v.verify(request(token, **kwargs), now=datetime.now(UTC))


def token(creds: Any, **kwargs: Any) -> str:
    return sign_token(creds, **{"server_id": "nats-test", "region": "us-east-1", **kwargs})


async def test_assumed_role_is_canonicalised_to_its_role(moto: MotoSts, sts: CountingSts) -> None:
    identity = await verify(verifier(moto, sts), token(moto.role))
    assert isinstance(identity, Identity), identity
    assert identity.principal == f"aws:{ROLE_ARN}"
    assert identity.subject == moto.role_unique_id
    assert dict(identity.attributes) == {"arn": ROLE_ARN, "account": ACCOUNT,
                                         "user_id": moto.role_unique_id, "arn_kind": "role"}
    assert identity.issuer == "sts.us-east-1.amazonaws.com" and identity.expires_at is None


async def test_session_name_only_when_enabled(moto: MotoSts, sts: CountingSts) -> None:
    identity = await verify(verifier(moto, sts, session_name=True), token(moto.role),
                            password=True)
    assert isinstance(identity, Identity)
    assert identity.attributes["session_name"] == "lambda-42"


@pytest.mark.parametrize("region", [None, "us-east-1", "eu-west-1"])
async def test_iam_user_on_global_and_regional_endpoints(moto: MotoSts, sts: CountingSts,
                                                         region: str | None) -> None:
    identity = await verify(verifier(moto, sts), token(moto.user, region=region))
    assert isinstance(identity, Identity), identity
    assert identity.principal == f"aws:{USER_ARN}"
    assert identity.attributes["arn_kind"] == "user"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"server_id": "nats-other"}, DenyReason.STS_SERVER_ID_MISMATCH),
    ({"now": datetime.now(UTC) - timedelta(minutes=16)}, DenyReason.STS_REQUEST_STALE),
    ({"region": "us-west-2"}, DenyReason.STS_HOST_NOT_ALLOWED),
])
async def test_refused_proofs_never_reach_sts(moto: MotoSts, sts: CountingSts,
                                              kwargs: dict[str, Any], reason: DenyReason) -> None:
    v = verifier(moto, sts, regions=frozenset({"us-east-1", "eu-west-1"}))
    result = await verify(v, token(moto.role, **kwargs))
    assert isinstance(result, Deny) and result.reason == reason
    assert sts.calls == 0


def flip_signature(tok: str) -> str:
    parts = token_parts(tok)
    auth = parts["headers"]["Authorization"]
    parts["headers"]["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    return from_parts(parts)


@pytest.mark.parametrize(("make", "reason", "sts_calls"), [
    # moto answers 403 SignatureDoesNotMatch to the first two, 403 InvalidClientTokenId to the
    # third: each reaches STS once and is refused there.
    (lambda m: flip_signature(token(m.role)), DenyReason.STS_SIGNATURE_REJECTED, 1),
    (lambda m: token(Credentials(m.role.access_key, "wrong-secret", m.role.token)),
     DenyReason.STS_SIGNATURE_REJECTED, 1),
    (lambda m: token(Credentials("AKIAUNKNOWNUNKNOWN00", "x")),
     DenyReason.STS_SIGNATURE_REJECTED, 1),
    # moto does not check freshness: a day-old proof passes STS, so authsvc must refuse it
    # itself, before asking.
    (lambda m: token(m.role, now=datetime.now(UTC) - timedelta(days=1)),
     DenyReason.STS_REQUEST_STALE, 0),
], ids=["flipped-signature", "wrong-secret", "unknown-key", "day-old"])
async def test_proofs_sts_refuses(moto: MotoSts, sts: CountingSts, make: Any,
                                  reason: DenyReason, sts_calls: int) -> None:
    result = await verify(verifier(moto, sts), make(moto))
    assert isinstance(result, Deny) and result.reason == reason, result
    assert sts.calls == sts_calls


async def test_a_long_session_token_is_for_sts_to_judge(moto: MotoSts,
                                                        sts: CountingSts) -> None:
    # moto's session tokens are 356 characters and it knows each one, so a longer token is
    # one it has not issued: what matters is that, with max_token_bytes raised, the proof
    # reaches STS and STS decides (AWS sets no maximum), instead of a 4,096-character cap
    # refusing it as malformed first.
    padded = Credentials(moto.role.access_key, moto.role.secret_key,
                         moto.role.token + "A" * 9_000)
    result = await verify(verifier(moto, sts, max_token_bytes=16 * 1024), token(padded))
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_SIGNATURE_REJECTED
    assert sts.calls == 1


async def test_a_header_name_that_folds_into_an_allowed_one_never_reaches_sts(
        moto: MotoSts, sts: CountingSts) -> None:
    # "X-Amz-Security-To\u212aen".lower() is "x-amz-security-token" (U+212A KELVIN SIGN
    # folds to "k"); moto accepted the rebuilt request before names had to be ASCII.
    parts = token_parts(token(moto.role))
    parts["headers"]["X-Amz-Security-To\u212aen"] = parts["headers"].pop("X-Amz-Security-Token")
    result = await verify(verifier(moto, sts), from_parts(parts))
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_REQUEST_MALFORMED
    assert sts.calls == 0


async def test_nonce_bound_proof_holds_on_its_connection_only(moto: MotoSts,
                                                              sts: CountingSts) -> None:
    v = verifier(moto, sts, require_nonce=True)
    bound = token(moto.role, nonce="nonce-of-conn-1")
    assert isinstance(await verify(v, bound, nonce="nonce-of-conn-1"), Identity)
    for other in ("nonce-of-conn-2", ""):
        result = await verify(v, bound, nonce=other)
        assert isinstance(result, Deny) and result.reason == DenyReason.STS_NONCE_MISMATCH
    assert sts.calls == 1


async def test_other_tokens_are_left_to_other_verifiers(moto: MotoSts, sts: CountingSts) -> None:
    assert await verify(verifier(moto, sts), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln") is None


async def test_sts_unreachable_is_a_fast_fault(moto: MotoSts) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    poster = HttpxSts(timeout=1.0)
    v = AwsIamVerifier(ProofRules(server_id="nats-test", endpoints={
        "sts.us-east-1.amazonaws.com": closed}), poster)
    started = time.monotonic()
    with pytest.raises(UpstreamError):
        await verify(v, token(moto.role))
    assert time.monotonic() - started < 0.5
    await poster.aclose()


async def test_sts_that_never_answers_is_cut_at_the_timeout(moto: MotoSts) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        poster = HttpxSts(timeout=0.3)
        v = AwsIamVerifier(ProofRules(server_id="nats-test", endpoints={
            "sts.us-east-1.amazonaws.com": url}), poster)
        started = time.monotonic()
        with pytest.raises(UpstreamError):
            await verify(v, token(moto.role))
        assert 0.25 < time.monotonic() - started < 0.8
        await poster.aclose()
