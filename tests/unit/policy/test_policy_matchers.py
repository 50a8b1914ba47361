"""The building blocks of ``match``: globs, claim tests, windows, and their load errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authsvc.errors import PolicyError
from authsvc.policy import load_policy_text
from authsvc.policy.claims import ClaimTest
from authsvc.policy.globs import Glob
from authsvc.policy.windows import Window, time_left


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("arn:aws:iam::1:role/ci/*", "arn:aws:iam::1:role/ci/x", True),
    ("arn:aws:iam::1:role/ci/*", "arn:aws:iam::1:role/ci/", True),
    ("arn:aws:iam::1:role/ci/*", "arn:aws:iam::1:role/ci/a/b", False),
    ("arn:aws:iam::*:role/x", "arn:aws:iam::1:2:role/x", False),
    ("arn:aws:iam::1:role/**", "arn:aws:iam::1:role/a/b:c", True),
    ("a.b?[c]", "a.b?[c]", True),
    ("a.b?", "a.bc", False),
    ("repo:acme/*", "REPO:acme/x", False),
])
def test_glob_segments(pattern: str, value: str, expected: bool) -> None:
    assert Glob(pattern).matches(value) is expected


@pytest.mark.parametrize(("test", "value", "expected"), [
    ({"equals": True}, True, True),
    ({"equals": True}, 1, False),
    ({"equals": 1}, True, False),
    ({"in": ["a", "b"]}, "b", True),
    ({"in": ["a", "b"]}, ("a",), False),
    ({"contains_any": ["a"]}, ("b", "a"), True),
    ({"contains_any": ["a"]}, "a", False),
    ({"contains_all": ["a", "b"]}, ("a",), False),
    ({"contains_all": ["a", "b"]}, None, False),
    ({"present": True}, None, False),
    ({"present": False}, None, True),
    ({"present": False}, "x", False),
    ({"pattern": "[a-z]+"}, "abc", True),
    ({"pattern": "[a-z]+"}, "abc1", False),
    ({"pattern": "[a-z]+", "present": True}, None, False),
])
def test_claim_test(test: dict[str, object], value: object, expected: bool) -> None:
    assert ClaimTest.model_validate(test).holds(value) is expected  # type: ignore[arg-type]


def test_window_crossing_midnight_and_dst() -> None:
    window = Window.model_validate({"start": "22:00", "end": "06:00"})
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Berlin switches to CEST at 01:00 UTC
    # 01:30 CET -> 06:00 CEST reads as 4.5 h on the wall clock but is 3.5 h of real time.
    assert time_left((window,), "Europe/Berlin", at) == timedelta(hours=3, minutes=30)
    assert time_left((window,), "UTC", datetime(2026, 3, 29, 12, tzinfo=UTC)) is None


BASE = "apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: r\n"


@pytest.mark.parametrize(("body", "line"), [
    ("    match: {source: nkey, source_cidrs: ['10.0.0.1/8']}\n"
     "    grant: {account: A}\n", 5),
    ("    match: {source: nkey}\n"
     "    grant: {account: A, windows: [{start: '08:00', end: '09:00'}]}\n", 6),
    ("    match: {source: nkey}\n"
     "    grant: {account: A, windows: [{start: '8am', end: '09:00'}], time_zone: UTC}\n", 6),
    ("    match: {source: nkey}\n"
     "    grant: {account: A, windows: [{start: '08:00', end: '09:00'}], time_zone: Mars/Base}\n",
     6),
    ("    match: {source: nkey, connection_types: [UNKNOWN]}\n    grant: {account: A}\n", 5),
    ("    match: {claims: {tenant: {}}}\n    grant: {account: A}\n", 5),
    ("    match: {claims: {tenant: {pattern: '('}}}\n    grant: {account: A}\n", 5),
    ("    match: {claims: {t: {present: false, equals: x}}}\n    grant: {account: A}\n", 5),
    ("    effect: deny\n    role: x\n    match: {source: nkey}\n", 4),
    ("    grant: {account: A}\n", 4),
    ("    effect: deny\n    permissions: {}\n", 6),
])
def test_new_keys_reject_mistakes_with_a_location(body: str, line: int) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(BASE + body, name="p.yaml")
    assert (caught.value.file, caught.value.line) == ("p.yaml", line)


def test_guardrail_without_match_loads() -> None:
    policy = load_policy_text(BASE + "    effect: deny\n    permissions: {publish: ['$SYS.>']}\n")
    assert policy.rules[0].is_guardrail
