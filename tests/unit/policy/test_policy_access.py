"""``policy.access``: the model of what nats-server lets a permission set receive, and the
seals that keep a subscribe allow ``P.*`` to one token after ``P``.

tests/integration/policy/test_subject_conformance.py checks the same model (and the seals)
against a real nats-server.
"""

from __future__ import annotations

import pytest

from authsvc.domain import Permissions, SubjectPermission
from authsvc.policy.access import can_receive, can_subscribe, covers, overlap, seals


def sub(allow: list[str], deny: list[str] | None = None) -> Permissions:
    return Permissions(pub=SubjectPermission((), ()),
                       sub=SubjectPermission(tuple(allow), tuple(deny or ())))


@pytest.mark.parametrize(("allow", "deny", "subject", "expected"), [
    # the quirk: allow P.* admits SUB P.>, which receives every deeper subject
    (["orders.*"], [], "orders.x", True),
    (["orders.*"], [], "orders.a.b", True),
    (["orders.*"], [], "orders.a.b.c.d", True),
    (["orders.*"], [], "orders", False),
    (["orders.*"], [], "other.a.b", False),
    (["*"], [], "any.thing.at.all", True),              # allow * admits SUB >
    (["a.*.*"], [], "a.x.y.z", True),                   # through SUB a.*.>
    (["a.*.b"], [], "a.x.b.c", False),                  # a * inside stays one token
    # a deny matching the subject filters it, wherever it came in
    (["tenants.acme.*"], ["tenants.*.secret"], "tenants.acme.secret", False),
    (["tenants.acme.*"], ["tenants.*.secret"], "tenants.acme.secret.db", True),
    (["tenants.acme.*"], ["tenants.acme.*.>"], "tenants.acme.orders", True),
    (["tenants.acme.*"], ["tenants.acme.*.>"], "tenants.acme.orders.private", False),
    # a deny ending in * refuses SUB P.> itself (its * matches the literal >)...
    (["orders.*"], ["orders.*"], "orders.a.b", False),
    # ...but not a P.> with a * in P, which the same allow admits
    (["t.*.*"], ["t.acme.*"], "t.acme.x.y", True),
    (["t.*.*"], ["t.acme.*"], "t.acme.x", False),
    # literal subjects only
    (["orders.*"], [], "orders.*", False),
    (["orders.>"], [], "orders.>", False),
])
def test_can_receive_models_the_server(allow: list[str], deny: list[str], subject: str,
                                       expected: bool) -> None:
    assert can_receive(sub(allow, deny), subject) is expected


def test_the_quirky_subscription_is_accepted_and_the_seal_does_not_refuse_it() -> None:
    assert can_subscribe(sub(["orders.*"]), "orders.>")
    assert can_subscribe(sub(["orders.*"], ["orders.*.>"]), "orders.>")
    assert can_subscribe(sub(["orders.*"], ["orders.*.>"]), "orders.*")


@pytest.mark.parametrize(("allow", "deny", "expected"), [
    (["tenants.acme.*"], ["tenants.*.secret"], ["tenants.acme.*.>"]),
    (["a.*.*"], [], ["a.*.*.>"]),
    (["*"], [], ["*.>"]),
    (["a.*", "a.b.*"], [], ["a.b.*.>"]),                 # a.b.* goes deeper than a.*
    (["a.*.b", "x.y"], [], []),                          # no allow ends in *
    (["P.*", "P.a.>"], [], []),                          # a seal would cut P.a.>
    (["P.*", "P.a.b"], [], []),
    (["P.*", ">"], [], []),
    (["P.*", "*.*.*"], [], ["*.*.*.>"]),                 # only *.*.* is sealed
    (["P.*", "Q.x.y", "P"], [], ["P.*.>"]),              # elsewhere, or shallower
    (["P.*", "P.a.>"], ["P.a.>"], ["P.*.>"]),            # a covered allow allows nothing
    (["P.*", "P.a.>"], ["P.*.>"], []),                   # already sealed
    (["P.*"], [">"], []),                                # the allow itself is denied
])
def test_seals(allow: list[str], deny: list[str], expected: list[str]) -> None:
    assert list(seals(SubjectPermission(tuple(allow), tuple(deny)))) == expected


@pytest.mark.parametrize(("allow", "deny"), [
    (["tenants.acme.*"], ["tenants.*.secret"]),
    (["a.*.*", "b.*"], ["b.x"]),
    (["*"], []),
])
def test_after_sealing_only_one_token_after_p_is_received(allow: list[str],
                                                          deny: list[str]) -> None:
    sealed = sub(allow, [*deny, *seals(SubjectPermission(tuple(allow), tuple(deny)))])
    for pattern in allow:
        head = pattern.rpartition(".")[0].replace("*", "x")
        one = f"{head}.y" if head else "y"
        assert can_receive(sealed, one) is not any(
            covers(entry, one) for entry in deny)
        assert not can_receive(sealed, f"{one}.deeper")
        assert not can_receive(sealed, f"{one}.deeper.still")


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("a.*", "a.b", True), ("a.>", "a.b.c", True), ("a.*", "a.b.c", False),
    ("a.b", "a.c", False), ("*.b.>", "a.*.c", True), (">", "x", True), ("a", "a.>", False),
])
def test_overlap(first: str, second: str, expected: bool) -> None:
    assert overlap(first, second) is expected
    assert overlap(second, first) is expected


@pytest.mark.parametrize(("general", "specific", "expected"), [
    ("a.*.>", "a.b.c", True), ("a.>", "a.>", True), ("a.*", "a.*", True),
    ("a.b", "a.*", False), ("a.*", "a.>", False), ("a.>", "a", False),
    (">", "a.*.>", True), ("a.*", "a.b.c", False),
])
def test_covers(general: str, specific: str, expected: bool) -> None:
    assert covers(general, specific) is expected
