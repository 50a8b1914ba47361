"""The aws-sts-v1 token format: compact, strictly parsed, no repeated names."""

from __future__ import annotations

import base64

import pytest

from authsvc.domain import Deny, DenyReason
from authsvc.identity.aws_token import PREFIX, StsProof, decode_proof, encode_proof, is_aws_token


def raw(document: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(document).rstrip(b"=").decode()


def test_round_trip_lowers_header_names() -> None:
    token = encode_proof("sts.amazonaws.com", "b", {"X-Amz-Date": "d", "Authorization": "a"})
    assert is_aws_token(token) and not is_aws_token("eyJhbGciOiJFUzI1NiJ9.e30.sig")
    assert "=" not in token and "+" not in token and "/" not in token
    assert decode_proof(token) == StsProof("sts.amazonaws.com", "b",
                                           {"x-amz-date": "d", "authorization": "a"})


@pytest.mark.parametrize(("token", "reason"), [
    (PREFIX + "not base64!", DenyReason.STS_REQUEST_MALFORMED),
    (raw(b"[1, 2]"), DenyReason.STS_REQUEST_MALFORMED),
    (raw(b'{"host": "h", "body": "b"}'), DenyReason.STS_REQUEST_MALFORMED),
    (raw(b'{"host": "h", "body": "b", "headers": {}, "url": "u"}'),
     DenyReason.STS_REQUEST_MALFORMED),
    (raw(b'{"host": 1, "body": "b", "headers": {}}'), DenyReason.STS_REQUEST_MALFORMED),
    (raw(b'{"host": "h", "body": "b", "headers": {"a": 1}}'), DenyReason.STS_REQUEST_MALFORMED),
    (raw(b'{"host": "h", "host": "evil", "body": "b", "headers": {}}'),
     DenyReason.STS_PARAMETER_DUPLICATE),
    (raw(b'{"host": "h", "body": "b", "headers": {"X-Amz-Date": "1", "X-Amz-Date": "2"}}'),
     DenyReason.STS_PARAMETER_DUPLICATE),
    (raw(b'{"host": "h", "body": "b", "headers": {"X-Amz-Date": "1", "x-amz-date": "2"}}'),
     DenyReason.STS_PARAMETER_DUPLICATE),
    # U+212A KELVIN SIGN lower-cases to "k": the name must not fold into an allowed one.
    (raw(b'{"host": "h", "body": "b", "headers": {"X-Amz-Security-To\\u212aen": "t"}}'),
     DenyReason.STS_REQUEST_MALFORMED),
    (raw('{"host": "h", "body": "b", "headers": {"X-Amz-Dat\u00e9": "1"}}'.encode()),
     DenyReason.STS_REQUEST_MALFORMED),
    (raw(b"\xff\xfe"), DenyReason.STS_REQUEST_MALFORMED),
    (raw(b"[" * 5000), DenyReason.STS_REQUEST_MALFORMED),  # nested past the parser's stack
    (raw(b'{"a":' * 1200), DenyReason.STS_REQUEST_MALFORMED),
    (PREFIX + "A" * 9000, DenyReason.TOKEN_TOO_LARGE),
])
def test_unreadable_tokens(token: str, reason: DenyReason) -> None:
    result = decode_proof(token)
    assert isinstance(result, Deny) and result.reason == reason
