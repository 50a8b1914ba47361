"""Identities rebuilt from audit records: an AWS identity gets back the attributes the aws_iam
verifier set (checked by running the verifier, recording its identity, and rebuilding it);
what the record cannot hold is reported as a gap, never as an absent attribute."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.credentials import Credentials

from authsvc.audit.record import DecisionFacts, Outcome, to_record
from authsvc.clients.aws import sign_token
from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    IdentitySource,
    Secret,
    ServerInfo,
)
from authsvc.identity.aws_iam import AwsIamVerifier
from authsvc.identity.aws_proof import ProofRules, StsCall
from authsvc.identity.sts import StsAnswer
from authsvc.policy.seen import seen_identities

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CREDS = Credentials("ASIAEXAMPLEEXAMPLE12", "secret-never-sent", "session-token/+=")
ANSWER = ('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
          "<GetCallerIdentityResult><UserId>{user_id}</UserId><Account>{account}</Account>"
          "<Arn>{arn}</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>")


class FixedSts:
    """STS answering every call with one caller."""

    def __init__(self, arn: str, user_id: str) -> None:
        self._body = ANSWER.format(arn=arn, user_id=user_id, account=arn.split(":")[4]).encode()

    async def post(self, call: StsCall) -> StsAnswer:
        return StsAnswer(status=200, content_type="text/xml", body=self._body)


def _request(token: str = "") -> ConnectRequest:
    return ConnectRequest(
        server=ServerInfo(id="N1"), user_nkey="U2",
        client=ClientInfo(host="10.0.0.7", type="nats", kind="Client"),
        connect=ConnectOptions(auth_token=Secret(token) if token else None),
        request_id="r", issued_at=NOW, expires_at=NOW)


def _logged(identity: Identity, request: ConnectRequest) -> dict[str, Any]:
    """The identity as the audit log holds it, through JSON as a file would."""
    record = to_record(DecisionFacts(time=NOW, outcome=Outcome.ALLOW, reason="allowed",
                                     request=request, identity=identity))
    return json.loads(json.dumps(record))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("arn", "user_id"), [
    ("arn:aws:sts::123456789012:assumed-role/orders-lambda/sess-1", "AROAEXAMPLE:sess-1"),
    ("arn:aws:iam::123456789012:user/division/alice", "AIDAEXAMPLE"),
    ("arn:aws:iam::123456789012:root", "123456789012"),
    ("arn:aws:sts::123456789012:federated-user/bob", "123456789012:bob"),
    ("arn:aws-us-gov:sts::123456789012:assumed-role/ci/run-7", "AROAGOV:run-7"),
])
async def test_an_aws_identity_is_rebuilt_with_the_verifiers_attributes(arn: str,
                                                                        user_id: str) -> None:
    verifier = AwsIamVerifier(ProofRules(server_id="nats-test"), FixedSts(arn, user_id),
                              session_name=True, federated_users=True)
    request = _request(sign_token(CREDS, server_id="nats-test", region="eu-west-1", now=NOW))
    identity = await verifier.verify(request, now=NOW)
    assert isinstance(identity, Identity)

    (seen,) = seen_identities([_logged(identity, request)], NOW)

    rebuilt = seen.identity
    assert (rebuilt.source, rebuilt.principal, rebuilt.subject, rebuilt.issuer) == (
        identity.source, identity.principal, identity.subject, identity.issuer)
    assert dict(rebuilt.attributes) == {name: value for name, value in
                                        identity.attributes.items() if name != "session_name"}
    assert seen.gaps.lacks("session_name", rebuilt)
    assert not any(seen.gaps.lacks(name, rebuilt) for name in identity.attributes
                   if name != "session_name")
    assert not seen.gaps.lacks("groups", rebuilt)  # the verifier never sets it: absent


def _record(**identity: str) -> dict[str, Any]:
    return {"type": "decision", "identity": identity,
            "client": {"host": "10.0.0.7", "type": "nats", "kind": "Client"}}


def test_an_aws_principal_that_is_no_canonical_arn_leaves_every_aws_attribute_unknown() -> None:
    (seen,) = seen_identities([_record(source="aws_iam", principal="aws:arn:aws:iam::12:x",
                                       subject="AROA", issuer="sts.amazonaws.com")], NOW)
    assert dict(seen.identity.attributes) == {}
    assert seen.gaps.lacks("arn", seen.identity) and seen.gaps.lacks("account", seen.identity)


def test_oidc_claims_are_unknown_and_nkeys_have_none() -> None:
    nkey, oidc = seen_identities([  # sorted by source
        _record(source="oidc", principal="oidc:https://idp#u1", subject="u1",
                issuer="https://idp"),
        _record(source="nkey", principal="nkey:UKEY", subject="UKEY"),
    ], NOW)
    assert oidc.identity.source is IdentitySource.OIDC
    assert oidc.gaps.lacks("role", oidc.identity) and oidc.gaps.lacks("groups", oidc.identity)
    assert not nkey.gaps.lacks("role", nkey.identity)
    assert oidc.gaps.requested_role and nkey.gaps.requested_role  # CONNECT user: not logged


def test_one_subject_per_identity_and_connection() -> None:
    role = "aws:arn:aws:iam::123456789012:role/orders"
    records = [
        _record(source="aws_iam", principal=role, subject="AROAOLD", issuer="sts.amazonaws.com"),
        _record(source="aws_iam", principal=role, subject="AROAOLD", issuer="sts.amazonaws.com"),
        # the role deleted and created again: a new unique id, which a rule may bind
        _record(source="aws_iam", principal=role, subject="AROANEW", issuer="sts.amazonaws.com"),
        _record(source="kerberos", principal="krb:alice", subject="alice"),  # unknown: skipped
        {"type": "service.start"},
    ]
    seen = seen_identities(records, NOW)
    assert sorted(subject.identity.subject for subject in seen) == ["AROANEW", "AROAOLD"]
    assert len({subject.name for subject in seen}) == 2
