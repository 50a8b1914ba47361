"""Subject syntax and NATS wildcard matching (nats-server ``sublist.go``)."""

from __future__ import annotations

import pytest

from authsvc.policy.subjects import subject_matches, validate_subject

# (pattern, subject, matches)
MATCH_TABLE = [
    ("foo", "foo", True),
    ("foo", "Foo", False),  # case-sensitive
    ("foo", "foo.bar", False),
    ("foo.bar", "foo", False),
    ("foo.bar", "foo.bar", True),
    ("*", "foo", True),
    ("*", "foo.bar", False),
    ("foo.*", "foo.bar", True),
    ("foo.*", "foo", False),
    ("foo.*", "foo.bar.baz", False),
    ("*.bar", "foo.bar", True),
    ("*.bar", "foo.baz", False),
    ("foo.*.baz", "foo.x.baz", True),
    ("foo.*.baz", "foo.x.y.baz", False),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    (">", "foo", True),
    (">", "foo.bar.baz", True),
    ("foo.>", "foo", False),  # '>' needs at least one token (nats-server#619)
    ("foo.>", "foo.bar", True),
    ("foo.>", "foo.bar.baz", True),
    ("foo.>", "bar.foo", False),
    ("*.>", "foo", False),
    ("*.>", "foo.bar", True),
    ("foo.*.>", "foo.a.b.c", True),
    ("foo.*.>", "foo.a", False),
    ("_INBOX.>", "_INBOX.abc.def", True),
    ("$JS.API.>", "$JS.API.STREAM.INFO.ORDERS", True),
    ("orders.*", "orders.*", True),  # the subject's '*' is a literal token here
    ("orders.new", "orders.*", False),
    # invalid input on either side never matches
    ("foo..bar", "foo..bar", False),
    ("foo", "", False),
    ("", "", False),
    ("foo.>.bar", "foo.x.bar", False),
    ("foo", "foo bar", False),
    ("foo*", "foo*", False),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), MATCH_TABLE)
def test_subject_matches(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


VALID = ["foo", "foo.bar", "*", ">", "foo.*", "foo.>", "*.*.>", "$JS.API.INFO", "_INBOX.>",
         "a-b_c.Ü", "orders.v2.created"]
INVALID = ["", ".", "foo.", ".foo", "foo..bar", "foo bar", "foo\tbar", "foo\n", "foo\x00",
           ">.foo", "foo.>.bar", "foo*", "foo.b*r", "a>b", "foo.>>", "**"]


@pytest.mark.parametrize("subject", VALID)
def test_valid_subjects(subject: str) -> None:
    assert validate_subject(subject) is None


@pytest.mark.parametrize("subject", INVALID)
def test_invalid_subjects(subject: str) -> None:
    assert validate_subject(subject) is not None
