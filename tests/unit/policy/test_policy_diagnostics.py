"""Validation errors as problems: every one, located, coded, with a hint a reader can act on.

Where ``load_errors.yaml`` pins locations and codes, these pin what an unknown key's hint
suggests (``details``: the key it may be a misspelling of, the section it belongs in) and
how files of the wrong kind and long lists of problems are reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.errors import PolicyError
from authsvc.policy import load_policy_text
from authsvc.policy.problems import MAX_RENDERED, InputFault, Problem, code_of, each
from authsvc.policy.testing import read_test_file

DATA = Path(__file__).parents[2] / "data" / "policy"
HEAD = "apiVersion: authsvc/v1\nkind: Policy\nrules:\n"
RULE = "  - id: a\n    match: {source: nkey}\n    grant:\n      account: APP\n"


def _problems(text: str) -> list[Problem]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    found = each(caught.value)
    assert all(isinstance(problem, Problem) for problem in found)
    return [problem for problem in found if isinstance(problem, Problem)]


def _unknown_key(text: str) -> dict[str, object]:
    (problem,) = _problems(text)
    assert problem.code == "unknown_key"
    return problem.details


@pytest.mark.parametrize(("text", "details"), [
    # misspelt in its own section
    (HEAD + RULE + "      acount: X\n", {"did_you_mean": "account"}),
    (HEAD + RULE + "      publish: {alow: [a]}\n", {"did_you_mean": "allow"}),
    # a valid key of a section below: dedented out of it, or never indented into it
    (HEAD + RULE + "    ttl: 5m\n", {"belongs_in": ["rules[0].grant"]}),
    (HEAD + RULE + "    publish: [a]\n",
     {"belongs_in": ["rules[0].grant", "rules[0].permissions"]}),
    (HEAD + RULE + "      allow: [a]\n",
     {"belongs_in": ["rules[0].grant.publish", "rules[0].grant.subscribe"]}),
    ("ttl: 5m\n" + HEAD + RULE, {"belongs_in": ["defaults"]}),
    # a valid key of the section above, or of a neighbouring one
    (HEAD + RULE + "      match: {source: oidc}\n", {"belongs_in": ["rules[0]"]}),
    (HEAD + RULE + "      subject: UABC\n", {"belongs_in": ["rules[0].match"]}),
    # misspelt key of a section below
    (HEAD + RULE + "    acount: X\n", {"belongs_in": ["rules[0].grant"],
                                        "did_you_mean": "account"}),
    # nothing near: no suggestion, rather than a wrong one, but the keys that are allowed
    (HEAD + RULE + "    colour: blue\n", {"allowed": [
        "id", "description", "effect", "role", "match", "grant", "permissions"]}),
], ids=["misspelt", "misspelt-nested", "dedented", "two-homes", "not-indented", "top-level",
        "parent", "neighbour", "misspelt-below", "unrelated"])
def test_unknown_key_suggestions(text: str, details: dict[str, object]) -> None:
    assert _unknown_key(text) == details


def test_a_suggestion_never_names_the_key_itself() -> None:
    assert _unknown_key(HEAD + RULE + "    ttl: 5m\n").get("did_you_mean") != "ttl"


def test_a_misspelt_required_key_comes_first_and_the_missing_one_points_back_at_it() -> None:
    text = HEAD + "  - id: a\n    match: {source: nkey}\n    grant:\n      acount: APP\n"
    unknown, missing = _problems(text)
    assert (unknown.code, unknown.details) == ("unknown_key", {"did_you_mean": "account"})
    assert missing.code == "missing_key"
    assert (unknown.line, unknown.column) == (missing.line, missing.column) == (7, 7)
    assert missing.hint  # names the misspelling, so the two read as one mistake


def test_every_problem_of_a_file_is_reported_in_file_order() -> None:
    rules = "".join(f"  - id: r{n}\n    match: {{source: nkey}}\n    grant: {{account: APP, "
                    f"publish: {{allow: ['a.>.b']}}}}\n" for n in range(30))
    found = _problems(HEAD + rules)
    assert [p.code for p in found] == ["subject_invalid"] * 30
    assert [p.line for p in found] == list(range(6, 6 + 3 * 30, 3))


def test_the_exception_text_stays_bounded_and_says_how_to_see_everything() -> None:
    rules = "".join(f"  - id: r{n}\n    match: {{source: kerberos}}\n    grant: {{account: A}}\n"
                    for n in range(MAX_RENDERED + 5))
    with pytest.raises(PolicyError) as caught:
        load_policy_text(HEAD + rules, "p.yaml")
    lines = str(caught.value).splitlines()
    assert len(each(caught.value)) == MAX_RENDERED + 5
    assert len(lines) == MAX_RENDERED + 1
    assert lines[-1].startswith("p.yaml: 5 more")


def test_a_policy_given_as_a_test_file_is_one_wrong_kind_fault() -> None:
    with pytest.raises(InputFault) as caught:
        read_test_file(DATA / "policies" / "basic.yaml")
    assert (caught.value.code, caught.value.line) == ("wrong_kind", 2)


def test_test_files_get_suggestions_too(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("apiVersion: authsvc/v1\nkind: PolicyTest\npolicy: [p.yaml]\ncases:\n"
                    "  - name: x\n    identity: {source: nkey, subject: U}\n"
                    "    expect: {decision: allow, can_publsh: [a]}\n"
                    "    account: APP\n")
    with pytest.raises(PolicyError) as caught:
        read_test_file(path)
    found = [p for p in each(caught.value) if isinstance(p, Problem)]
    assert [(p.code, p.line, p.details) for p in found] == [
        ("unknown_key", 7, {"did_you_mean": "can_publish"}),
        ("unknown_key", 8, {"belongs_in": ["cases[0].expect"]}),
    ]


def test_yaml_syntax_errors_keep_their_location() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(HEAD + "  - id: [a\n", "p.yaml")
    assert code_of(caught.value) == "yaml_syntax"
    assert caught.value.line > 0 and caught.value.column > 0


def test_a_misspelt_choice_suggests_the_one_meant() -> None:
    (problem,) = _problems(HEAD + "  - id: a\n    match: {source: nkey, connection_types: "
                           "[WEBSOCKETS]}\n    grant: {account: APP}\n")
    assert (problem.code, problem.details) == ("literal_error", {"did_you_mean": "WEBSOCKET"})


def test_an_id_outside_its_characters_gets_a_hint() -> None:
    (problem,) = _problems(HEAD + "  - id: Bad_ID\n    match: {source: nkey}\n"
                           "    grant: {account: APP}\n")
    assert problem.code == "string_pattern_mismatch"
    assert problem.hint
