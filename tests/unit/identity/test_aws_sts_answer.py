"""Reading STS answers: exactly one caller, in the STS namespace, from a strict XML parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.domain import Deny, DenyReason
from authsvc.errors import UpstreamError
from authsvc.identity import xmlstrict
from authsvc.identity.sts import Caller, StsAnswer, caller_of, read_answer

DATA = Path(__file__).parents[2] / "data" / "aws"


def answer(name: str, status: int = 200, content_type: str = "text/xml") -> StsAnswer:
    return StsAnswer(status=status, content_type=content_type, body=(DATA / name).read_bytes())


def test_moto_assumed_role_answer() -> None:
    assert read_answer(answer("moto-assumed-role.xml"), "sts") == Caller(
        arn="arn:aws:sts::123456789012:assumed-role/orders-lambda/sess-1",
        account="123456789012", user_id="AROARZPUZDIKFT3H6PBFR:sess-1")


def test_aws_user_answer_with_whitespace() -> None:
    caller = read_answer(answer("aws-user.xml", content_type="text/xml; charset=UTF-8"), "sts")
    assert isinstance(caller, Caller)
    assert caller.arn == "arn:aws:iam::123456789012:user/division/alice"


@pytest.mark.parametrize("name", [
    "xxe.xml", "billion-laughs.xml", "two-results.xml", "two-arns.xml", "wrong-namespace.xml",
    "result-in-other-namespace.xml", "embedded-in-other-answer.xml", "nested-arn.xml",
    "moto-signature-error.xml",
])
def test_doubtful_answers_are_refused(name: str) -> None:
    result = read_answer(answer(name), "sts")
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_RESPONSE_INVALID


def test_a_non_ascii_account_is_refused() -> None:
    result = caller_of("arn:aws:iam::12345678901\u0662:user/x", "12345678901\u0662",
                       "AIDAEXAMPLE")
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_RESPONSE_INVALID


def test_a_json_answer_is_refused() -> None:
    result = read_answer(StsAnswer(200, "application/json", b'{"Arn": "x"}'), "sts")
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_RESPONSE_INVALID


@pytest.mark.parametrize(("name", "status"), [
    ("moto-signature-error.xml", 403), ("aws-expired-error.xml", 400), ("xxe.xml", 403)])
def test_sts_refusing_the_proof_is_a_denial(name: str, status: int) -> None:
    result = read_answer(answer(name, status, "text/html"), "sts")
    assert isinstance(result, Deny) and result.reason == DenyReason.STS_SIGNATURE_REJECTED


@pytest.mark.parametrize(("name", "status"), [
    ("aws-throttling-error.xml", 400), ("aws-user.xml", 500), ("aws-user.xml", 503),
    ("aws-user.xml", 429), ("aws-user.xml", 302)])
def test_sts_side_problems_are_faults(name: str, status: int) -> None:
    with pytest.raises(UpstreamError):
        read_answer(answer(name, status), "sts")


def test_the_parser_refuses_what_xml_attacks_need() -> None:
    for document in (b"<?pi x?><a/>", b"<!DOCTYPE a><a/>", b"<a>" * 20 + b"</a>" * 20,
                     b"<a>" + b"<b/>" * 300 + b"</a>", b"", b"<a>"):
        with pytest.raises(xmlstrict.XmlRefused):
            xmlstrict.parse(document)
