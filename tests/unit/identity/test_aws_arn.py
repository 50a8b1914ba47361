"""Caller ARNs canonicalised: assumed roles to their role (path lost), others unchanged."""

from __future__ import annotations

import pytest

from authsvc.identity.aws_arn import ArnKind, CallerArn, canonical_arn, unique_id

A = "123456789012"


@pytest.mark.parametrize(("arn", "expected"), [
    (f"arn:aws:sts::{A}:assumed-role/orders-lambda/lambda-42",
     CallerArn(f"arn:aws:iam::{A}:role/orders-lambda", A, ArnKind.ROLE, "lambda-42")),
    (f"arn:aws-cn:sts::{A}:assumed-role/r/s1",
     CallerArn(f"arn:aws-cn:iam::{A}:role/r", A, ArnKind.ROLE, "s1")),
    (f"arn:aws-us-gov:sts::{A}:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com",
     CallerArn(f"arn:aws-us-gov:iam::{A}:role/AWSReservedSSO_Admin_0123", A, ArnKind.ROLE,
               "alice@example.com")),
    (f"arn:aws:iam::{A}:user/division/alice",
     CallerArn(f"arn:aws:iam::{A}:user/division/alice", A, ArnKind.USER)),
    (f"arn:aws:iam::{A}:root", CallerArn(f"arn:aws:iam::{A}:root", A, ArnKind.ROOT)),
    (f"arn:aws:sts::{A}:federated-user/bob",
     CallerArn(f"arn:aws:sts::{A}:federated-user/bob", A, ArnKind.FEDERATED_USER)),
])
def test_canonical_forms(arn: str, expected: CallerArn) -> None:
    assert canonical_arn(arn) == expected


@pytest.mark.parametrize("arn", [
    f"arn:aws:sts::{A}:assumed-role/orders-lambda",             # no session
    f"arn:aws:sts::{A}:assumed-role/a/b/c",                     # a path cannot appear here
    f"arn:aws:iam::{A}:group/admins",                           # not a caller
    f"arn:aws:s3:::{A}:user/x", "arn:aws:iam::12345:user/x",    # service, account shape
    f"arn:evil:iam::{A}:user/x", f"arn:aws:iam::{A}:user/x y",  # partition, blank
    f"arn:aws:iam:eu-west-1:{A}:user/x", f" arn:aws:iam::{A}:user/x",
    "arn:aws:iam::12345678901\uff12:user/x",                     # a non-ASCII digit
])
def test_unknown_or_malformed_arns_are_none(arn: str) -> None:
    assert canonical_arn(arn) is None


def test_unique_id_drops_the_role_session_only() -> None:
    assert unique_id("AROAEXAMPLE:lambda-42", ArnKind.ROLE) == "AROAEXAMPLE"
    assert unique_id(f"{A}:bob", ArnKind.FEDERATED_USER) == f"{A}:bob"
    assert unique_id("AIDAEXAMPLE", ArnKind.USER) == "AIDAEXAMPLE"
