"""The building blocks of ``match``: globs, claim tests, windows, and their load errors."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from authsvc.errors import PolicyError
from authsvc.policy import load_policy_text
from authsvc.policy.claims import ClaimTest
from authsvc.policy.globs import ArnGlob, Glob, _Positions
from authsvc.policy.matchers import client_address
from authsvc.policy.problems import code_of
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


def _backtracking(pattern: str, value: str) -> bool:
    """The plain regex reading of a glob, as a reference for short values."""
    parts = [".*" if part == "**" else "[^:/]*" if part == "*" else re.escape(part)
             for part in re.findall(r"\*\*|\*|[^*]", pattern)]
    return re.fullmatch("".join(parts), value, re.DOTALL) is not None


def test_globs_decide_as_the_plain_regex_reading_does() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        pattern = "".join(rng.choice("ab:/*-") for _ in range(rng.randint(0, 8)))
        value = "".join(rng.choice("ab:/-") for _ in range(rng.randint(0, 9)))
        assert Glob(pattern).matches(value) is _backtracking(pattern, value), (pattern, value)


@pytest.mark.parametrize(("pattern", "linear"), [
    ("arn:aws:iam::*:**-**-**-admin", True),   # 70 s on a 512-character path as a regex
    ("*-*-admin", True),
    ("repo:acme/*:ref:refs/heads/*", False),   # each * ends at a separator: one way only
    ("**-admin", False),
])
def test_globs_that_could_backtrack_run_in_linear_time(pattern: str, linear: bool) -> None:
    assert isinstance(Glob(pattern)._matcher, _Positions) is linear
    path = "arn:aws:iam::123456789012:user/" + "-" * 2000 + "/x"
    assert Glob(pattern).matches(path) is False


def test_an_arn_glob_never_reaches_across_the_account_field() -> None:
    """IAM user paths may hold ':': matched as one string, ``arn:**:iam::1111...`` would
    admit a user of another account whose path spells out the pinned account."""
    glob = ArnGlob("arn:**:iam::111122223333:role/admin")
    assert glob.matches("arn:aws:iam::111122223333:role/admin")
    assert not glob.matches("arn:aws:iam::123456789012:user/x:iam::111122223333:role/admin")
    assert ArnGlob("arn:aws:iam::123456789012:user/**").matches(
        "arn:aws:iam::123456789012:user/x:iam::111122223333:role/admin")


@pytest.mark.parametrize("arn", [
    "arn:aws:sts::123456789012:assumed-role/orders-lambda/*",  # sessions match as their role
    "arn:aws:iam::123456789012:role/svc/orders-lambda",        # roles match without a path
    "arn:aws:iam::111122223333:role/ci/*",
    "**:111122223333:role/admin",                              # not six fields
    "arn:aws:s3:::bucket/key",
    "arn:aws:iam::12345:role/x",                               # not a 12-digit account
    "arn:aws:iam:eu-west-1:123456789012:role/x",               # IAM ARNs have no region
    "arn:aws:sts::123456789012:role/x",                        # sts: federated users only
    "arn:aws:iam::123456789012:federated-user/x",
    "arn:aws-iso:iam::123456789012:role/x",
])
def test_an_arn_glob_no_verified_arn_can_match_is_refused_at_load(arn: str) -> None:
    text = ("apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: r\n    effect: deny\n"
            f"    match: {{aws: {{arn: '{arn}'}}}}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text)
    assert code_of(caught.value) == "arn_glob_impossible"


@pytest.mark.parametrize("arn", [
    "arn:aws:iam::123456789012:role/orders-*", "arn:*:iam::*:root",
    "arn:aws:iam::123456789012:user/ops/*", "arn:aws:sts::123456789012:federated-user/*",
    "arn:aws:iam::*:role/**", "arn:aws-us-gov:iam::123456789012:role/x"])
def test_arn_globs_a_verified_arn_can_match_load(arn: str) -> None:
    text = ("apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: r\n    effect: deny\n"
            f"    match: {{aws: {{arn: '{arn}'}}}}\n")
    assert load_policy_text(text).rules[0].id == "r"


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


@pytest.mark.parametrize(("test", "value", "allow", "deny"), [
    # a deny rule reads a list as "any value": one extra group, or a claim the IdP sends as
    # a list, must not slip past it; an allow rule keeps reading the whole value
    ({"equals": "contractors"}, ("staff", "contractors"), False, True),
    ({"in": ["contractors", "vendors"]}, ("staff", "vendors"), False, True),
    ({"pattern": "contract.*"}, ("staff", "contractors"), False, True),
    ({"pattern": "[a-z]+"}, ("staff", "ops"), True, True),
    ({"contains_any": ["contractors"]}, "contractors", False, True),
    ({"contains_all": ["a"]}, "a", False, True),
    ({"equals": "contractors"}, ("staff",), False, False),
    ({"equals": "x"}, None, False, False),             # absent stays false for both
    ({"present": False}, ("x",), False, False),
])
def test_a_list_claim_is_read_so_that_each_rule_fails_safe(
        test: dict[str, object], value: object, allow: bool, deny: bool) -> None:
    claim = ClaimTest.model_validate(test)
    assert claim.holds(value) is allow  # type: ignore[arg-type]
    assert claim.holds(value, fail_closed=True) is deny  # type: ignore[arg-type]


def test_a_pattern_that_runs_out_of_time_fails_safe() -> None:
    """Backtracking on a value from the client's IdP: undecided, which no allow rule grants
    on and every deny rule refuses on."""
    claim = ClaimTest.model_validate({"pattern": "(a|aa)+"})
    value = "a" * 40 + "!"
    assert claim.holds(value) is False
    assert claim.holds(value, fail_closed=True) is True
    assert claim.holds("aaaa") is True  # a value that decides in time decides


def test_window_crossing_midnight_and_dst() -> None:
    window = Window.model_validate({"start": "22:00", "end": "06:00"})
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Berlin switches to CEST at 01:00 UTC
    # 01:30 CET -> 06:00 CEST reads as 4.5 h on the wall clock but is 3.5 h of real time.
    assert time_left((window,), "Europe/Berlin", at) == timedelta(hours=3, minutes=30)
    assert time_left((window,), "UTC", datetime(2026, 3, 29, 12, tzinfo=UTC)) is None


# America/New_York, 2026: on Sunday 03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC); on
# Sunday 11-01 02:00 EDT falls back to 01:00 EST (06:00 UTC), so 01:00-01:59 comes twice.
@pytest.mark.parametrize(("start", "end", "at", "left"), [
    # spring forward, end in the gap: 02:59 closes at its earlier reading, 01:59 EST
    ("00:00", "02:59", "2026-03-08T06:58:00", timedelta(minutes=1)),   # 01:58 EST
    ("00:00", "02:59", "2026-03-08T07:00:00", None),                    # 03:00 EDT
    ("00:00", "02:59", "2026-03-08T07:50:00", None),                    # 03:50 EDT
    # spring forward, start in the gap: 02:30 opens at its later reading, 03:30 EDT
    ("02:30", "05:00", "2026-03-08T07:29:00", None),                    # 03:29 EDT
    ("02:30", "05:00", "2026-03-08T07:30:00", timedelta(hours=1, minutes=30)),
    # fall back, end in the repeated hour: closes the first time 01:30 comes (EDT)
    ("00:00", "01:30", "2026-11-01T05:29:00", timedelta(minutes=1)),   # 01:29 EDT
    ("00:00", "01:30", "2026-11-01T05:30:00", None),                    # 01:30 EDT
    ("00:00", "01:30", "2026-11-01T06:10:00", None),                    # 01:10 EST
    # fall back, start in the repeated hour: opens the second time 01:30 comes (EST)
    ("01:30", "03:00", "2026-11-01T05:40:00", None),                    # 01:40 EDT
    ("01:30", "03:00", "2026-11-01T06:29:00", None),                    # 01:29 EST
    ("01:30", "03:00", "2026-11-01T06:30:00", timedelta(hours=1, minutes=30)),  # 01:30 EST
])
def test_a_window_never_gains_time_in_a_dst_transition(start: str, end: str, at: str,
                                                       left: timedelta | None) -> None:
    window = Window.model_validate({"days": ["sun"], "start": start, "end": end})
    now = datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert time_left((window,), "America/New_York", now) == left


@pytest.mark.parametrize(("at", "left"), [
    ("2026-03-29T00:20:00", timedelta(minutes=10)),  # 01:20 CET
    ("2026-03-29T00:40:00", None),                   # 01:40 CET: 02:30 read as 01:30 CET
    ("2026-03-29T01:20:00", None),                   # 03:20 CEST
])
def test_a_window_across_midnight_ending_in_the_gap_closes_before_it(
        at: str, left: timedelta | None) -> None:
    window = Window.model_validate({"days": ["sat"], "start": "22:00", "end": "02:30"})
    now = datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert time_left((window,), "Europe/Berlin", now) == left


BASE = "apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: r\n"
WINDOWED = ("    match: {source: nkey}\n"
            "    grant:\n      account: A\n      windows: [{start: '08:00', end: '09:00'}]\n"
            "      time_zone: ")


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "posix/Europe/Berlin",
                                  "right/UTC", "posix", "LocalTime", "RIGHT/Europe/Berlin"])
def test_zones_that_depend_on_the_host_are_refused(zone: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(BASE + WINDOWED + f"'{zone}'\n", name="p.yaml")
    assert (code_of(caught.value), caught.value.line, caught.value.column) == (
        "zone_host_dependent", 9, 18)
    assert caught.value.hint


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "America/New_York", "Europe/Berlin",
                                  "EST5EDT", "America/Argentina/Buenos_Aires"])
def test_iana_zones_load(zone: str) -> None:
    policy = load_policy_text(BASE + WINDOWED + f"{zone}\n")
    grant = policy.rules[0].grant
    assert grant is not None and grant.time_zone == zone


@pytest.mark.parametrize(("cidr", "code"), [
    ("fe80::%eth0/64", "cidr_scoped"),
    ("fe80::1%1/128", "cidr_scoped"),
    ("::ffff:10.0.0.0/104", "cidr_ipv4_mapped"),
    ("::ffff:0:0/96", "cidr_ipv4_mapped"),
    ("::ffff:192.0.2.7/128", "cidr_ipv4_mapped"),
])
def test_cidrs_that_could_not_match_as_written_are_refused(cidr: str, code: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(BASE + f"    match: {{source: nkey, source_cidrs: ['{cidr}']}}\n"
                         "    grant: {account: A}\n", name="p.yaml")
    assert (code_of(caught.value), caught.value.line, caught.value.column) == (code, 5, 42)
    assert caught.value.hint


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "fe80::/64", "2001:db8::/32", "::/0",
                                  "::/1", "0.0.0.0/0"])
def test_plain_cidrs_load(cidr: str) -> None:
    policy = load_policy_text(BASE + f"    match: {{source: nkey, source_cidrs: ['{cidr}']}}\n"
                              "    grant: {account: A}\n")
    match = policy.rules[0].match
    assert match is not None and match.source_cidrs is not None
    assert str(match.source_cidrs[0]) == cidr


@pytest.mark.parametrize(("host", "address"), [
    ("10.1.2.3", "10.1.2.3"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("::FFFF:0a01:0203", "10.1.2.3"),
    ("2001:db8::1", "2001:db8::1"),
    ("::10.1.2.3", "::a01:203"),         # IPv4-compatible (deprecated) is not mapped
    ("10.1.2.3%eth0", None),
    ("fe80::1%eth0", None),
    ("::ffff:10.1.2.3%eth0", None),
    ("", None),
    ("localhost", None),
    (" 10.1.2.3", None),
    ("10.1.2.3 ", None),
    ("[::1]", None),
    ("10.1.2.3:4222", None),
    ("010.1.2.3", None),
])
def test_client_address_reads_exactly_one_address(host: str, address: str | None) -> None:
    found = client_address(host)
    assert (str(found) if found is not None else None) == address


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


@pytest.mark.parametrize("pattern", ["team-x{e<=1}", "[[:alpha:]]+", "(?V1)a", r"\\p{L}+"])
def test_a_pattern_the_regex_engine_reads_unlike_re_is_refused(pattern: str) -> None:
    """Patterns are documented as re syntax: a fuzzy match (x{e<=1}, which widens an allow)
    or a POSIX class would mean something else than a reviewer reads."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        ClaimTest.model_validate({"pattern": pattern})
    assert caught.value.errors()[0]["type"] == "pattern_invalid"


def test_an_undecided_value_is_remembered_not_matched_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconnect with the same token must not cost the time limit again."""
    from authsvc.policy import claims

    calls: list[str] = []
    real = claims.compiled

    class Counting:
        def __init__(self, pattern: str) -> None:
            self._pattern = real(pattern)

        def fullmatch(self, value: str, timeout: float) -> object:
            calls.append(value)
            return self._pattern.fullmatch(value, timeout=timeout)

    monkeypatch.setattr(claims, "compiled", Counting)
    claim = ClaimTest.model_validate({"pattern": "(a|aa)+"})
    value = "a" * 41 + "?"
    assert claim.holds(value) is False
    assert claim.holds(value, fail_closed=True) is True
    assert claim.holds(value) is False
    assert calls == [value]
