"""Subject templates: syntax at load, safe rendering, and the no-widening property."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsvc.domain import Grant, Identity, IdentitySource, Permissions, SubjectPermission
from authsvc.errors import PolicyError
from authsvc.policy import load_policy_text, subject_matches
from authsvc.policy.templates import MAX_EXPANSION, TemplateError, render, render_grant

TEMPLATE = "orders.{{claims.tenant}}.>"


def _identity(**attributes: object) -> Identity:
    return Identity(source=IdentitySource.OIDC, principal="oidc:x#u", subject="u",
                    attributes=attributes)  # type: ignore[arg-type]


# Any text, biased towards the characters that would widen a subject.
VALUES = st.text(alphabet=st.sampled_from("ab-_9.*> \t$é\u00a0Z"), max_size=8) | st.text(max_size=8)
SUBJECTS = st.lists(st.sampled_from(["orders", "a", "b", "*", ">", "acme", "x.y", "a b"]),
                    min_size=1, max_size=5).map(".".join)


@given(VALUES, SUBJECTS)
def test_rendering_never_reaches_outside_the_identity_namespace(value: str, other: str) -> None:
    try:
        (pattern,) = render(TEMPLATE, _identity(tenant=value))
    except TemplateError:
        return  # refused: nothing is granted
    assert pattern.split(".") == ["orders", value, ">"]
    assert value not in ("*", ">")
    if subject_matches(pattern, other):
        assert other.split(".")[1] == value


@given(st.lists(VALUES, min_size=1, max_size=MAX_EXPANSION + 2))
def test_each_expands_only_safe_values_and_only_up_to_the_cap(values: list[str]) -> None:
    try:
        rendered = render("m.{{each claims.r}}.>", _identity(r=tuple(values)))
    except TemplateError:
        return
    assert len(values) <= MAX_EXPANSION
    assert set(rendered) == {f"m.{v}.>" for v in values}
    assert all(len(subject.split(".")) == 3 for subject in rendered)


@pytest.mark.parametrize("subject", [
    "orders.{{claims.tenant}.>", "orders.{{claim.tenant}}", "a.{{each subject}}",
    "a.{{each claims.x}}.{{each claims.y}}", "a.{{claims.}}", "{{subject}}.>.x",
])
def test_bad_templates_are_load_errors(subject: str) -> None:
    text = ("apiVersion: authsvc/v1\nkind: Policy\nrules:\n  - id: r\n"
            "    match: {source: oidc}\n"
            f"    grant: {{account: A, publish: {{allow: ['{subject}']}}}}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, name="p.yaml")
    assert caught.value.line == 6


def test_integer_claims_render_and_booleans_do_not() -> None:
    assert render("t.{{claims.n}}", _identity(n=42)) == ("t.42",)
    with pytest.raises(TemplateError):
        render("t.{{claims.n}}", _identity(n=True))


PLAIN_SUBJECTS = st.lists(st.sampled_from(["a", "b.>", "a.*", "orders.eu", "_INBOX.>", "z"]),
                          max_size=4).map(tuple)


@given(PLAIN_SUBJECTS, PLAIN_SUBJECTS, PLAIN_SUBJECTS, PLAIN_SUBJECTS)
def test_a_grant_without_templates_renders_as_the_full_path_would(
        pub_allow: tuple[str, ...], pub_deny: tuple[str, ...], sub_allow: tuple[str, ...],
        sub_deny: tuple[str, ...]) -> None:
    # render_grant skips the work for a grant that would render to itself; it must give the
    # same grant as rendering every list (sorted, distinct), whatever order the lists are in.
    grant = Grant(account="APP", permissions=Permissions(
        pub=SubjectPermission(allow=pub_allow, deny=pub_deny),
        sub=SubjectPermission(allow=sub_allow, deny=sub_deny)))
    rendered = render_grant(grant, _identity())
    for got, given_ in ((rendered.permissions.pub.allow, pub_allow),
                        (rendered.permissions.pub.deny, pub_deny),
                        (rendered.permissions.sub.allow, sub_allow),
                        (rendered.permissions.sub.deny, sub_deny)):
        assert got == tuple(sorted(set(given_)))
    canonical = all(lst == tuple(sorted(set(lst)))
                    for lst in (pub_allow, pub_deny, sub_allow, sub_deny))
    assert (rendered is grant) == canonical  # the shortcut is taken exactly when it may be


def test_a_grant_with_a_template_is_rendered() -> None:
    grant = Grant(account="APP", permissions=Permissions(
        pub=SubjectPermission(allow=("a", TEMPLATE))))
    rendered = render_grant(grant, _identity(tenant="acme"))
    assert rendered.permissions.pub.allow == ("a", "orders.acme.>")
    with pytest.raises(TemplateError):
        render_grant(grant, _identity())  # the claim is missing: refused, never dropped


_HASH = hashlib.sha256(b"oidc:x#u").hexdigest()[:16]  # _identity()'s principal.hash


@pytest.mark.parametrize(("template", "identity"), [
    ("{{claims.t}}.>", _identity(t="_INBOX")),                    # every reply in the account
    ("{{claims.t}}.>", _identity(t=f"_INBOX_{_HASH}")),           # another identity's inbox
    ("{{claims.t}}", _identity(t="_INBOXES")),
    ("_{{claims.t}}.>", _identity(t="INBOX")),                    # literal and value together
    ("{{claims.a}}{{claims.b}}.>", _identity(a="_IN", b="BOX")),
    ("{{each claims.r}}.>", _identity(r=("ops", "_INBOX"))),      # one value of a list
    ("{{subject}}.>", Identity(source=IdentitySource.OIDC, principal="oidc:x#_INBOX",
                               subject="_INBOX")),
], ids=["value", "other-identity-inbox", "prefix", "literal-and-value", "two-values", "each",
        "subject"])
def test_a_value_never_makes_a_first_token_start_with_inbox(
        template: str, identity: Identity) -> None:
    with pytest.raises(TemplateError):
        render(template, identity)


@pytest.mark.parametrize(("template", "identity", "rendered"), [
    ("{{claims.t}}.>", _identity(t="_inbox"), "_inbox.>"),          # subjects are case-sensitive
    ("{{claims.t}}.>", _identity(t="INBOX"), "INBOX.>"),
    ("orders.{{claims.t}}.>", _identity(t="_INBOX"), "orders._INBOX.>"),
    ("_INBOX.{{claims.t}}.>", _identity(t="ops"), "_INBOX.ops.>"),   # the policy's own prefix
    ("_INBOX_{{principal.hash}}.>", _identity(), f"_INBOX_{_HASH}.>"),
], ids=["lower-case", "no-underscore", "not-first-token", "policy-inbox", "principal-inbox"])
def test_inbox_only_where_the_policy_writes_it(template: str, identity: Identity,
                                               rendered: str) -> None:
    assert render(template, identity) == (rendered,)


# Pieces that spell _INBOX together or apart, in both cases.
INBOX_PIECES = st.text(alphabet=st.sampled_from("_INBOXinbox"), max_size=7) | st.sampled_from(
    ["_INBOX", "_IN", "BOX", "_INBOX_a1", "_inbox"])


@given(INBOX_PIECES, INBOX_PIECES)
def test_no_value_reaches_a_reserved_inbox(first: str, second: str) -> None:
    try:
        rendered = render("{{claims.a}}{{claims.b}}.x", _identity(a=first, b=second))
    except TemplateError:
        return
    assert not any(subject.startswith("_INBOX") for subject in rendered)
