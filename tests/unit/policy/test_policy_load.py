"""Loading policy files: composition, revision, and errors located at file:line:column."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from authsvc.domain import IdentitySource
from authsvc.errors import PolicyError
from authsvc.policy import DuplicateDefinitionError, Effect, load_policy, load_policy_text
from authsvc.policy.load import MAX_FILE_BYTES, revision_of, rule_locations
from authsvc.policy.problems import InputFault, code_of, each

DATA = Path(__file__).parents[2] / "data" / "policy"


class Where(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    file: str
    line: int
    column: int


class ErrorCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    paths: list[str]
    error: Where
    codes: list[str]
    more: list[Where] = []
    first: Where | None = None


def _error_cases() -> list[ErrorCase]:
    raw = yaml.safe_load((DATA / "load_errors.yaml").read_text())
    return [ErrorCase.model_validate(case) for case in raw["cases"]]


@pytest.mark.parametrize("case", _error_cases(), ids=lambda case: case.name)
def test_load_error_location(case: ErrorCase) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy([DATA / path for path in case.paths])
    error = caught.value
    assert (Path(error.file), error.line, error.column) == (
        DATA / case.error.file, case.error.line, case.error.column)
    problems = each(error)
    assert [code_of(problem) for problem in problems] == case.codes
    assert [(Path(p.file), p.line, p.column) for p in problems[1:]] == [
        (DATA / where.file, where.line, where.column) for where in case.more]
    if case.first is None:
        assert not isinstance(error, DuplicateDefinitionError)
    else:
        assert isinstance(error, DuplicateDefinitionError)
        assert (Path(error.first.file), error.first.line, error.first.column) == (
            DATA / case.first.file, case.first.line, case.first.column)


def test_every_error_file_is_exercised() -> None:
    used = {DATA / path for case in _error_cases() for path in case.paths}
    on_disk = {path for path in (DATA / "errors").iterdir()}
    assert on_disk <= used


def test_directory_composes_sorted_files() -> None:
    policy = load_policy([DATA / "policies" / "composed"])
    assert policy.sources == tuple(
        str(DATA / "policies" / "composed" / name) for name in ("10-defaults.yml", "20-rules.yaml"))
    assert policy.defaults.ttl == timedelta(minutes=10)
    assert policy.defaults.max_ttl == timedelta(hours=2)
    assert [rule.id for rule in policy.rules] == ["ops-admin", "ops-blocked"]
    assert policy.rules[1].effect is Effect.DENY


def test_dotfiles_and_other_suffixes_in_a_directory_are_skipped() -> None:
    # composed/ also holds .scratch.yaml (an editor file) and README.txt; both are invalid.
    policy = load_policy([DATA / "policies" / "composed"])
    assert len(policy.sources) == 2


def test_revision_is_sha256_over_source_digests() -> None:
    paths = [DATA / "policies" / "basic.yaml", DATA / "policies" / "composed" / "20-rules.yaml"]
    policy = load_policy(paths)
    expected = hashlib.sha256(
        b"".join(hashlib.sha256(path.read_bytes()).digest() for path in paths)).hexdigest()
    assert policy.revision == expected
    assert revision_of([path.read_bytes() for path in paths]) == expected


def test_revision_depends_on_file_boundaries_and_order() -> None:
    assert revision_of([b"ab", b"c"]) != revision_of([b"a", b"bc"])
    assert revision_of([b"a", b"b"]) != revision_of([b"b", b"a"])


def test_load_policy_text_matches_file_load() -> None:
    path = DATA / "policies" / "basic.yaml"
    from_text = load_policy_text(path.read_text(), name="basic")
    from_file = load_policy([path])
    assert from_text.rules == from_file.rules
    assert from_text.revision == from_file.revision
    assert from_text.sources == ("basic",)


MINIMAL = "apiVersion: authsvc/v1\nkind: Policy\n"


def test_defaults_apply_when_no_file_gives_them() -> None:
    policy = load_policy_text(MINIMAL)
    assert (policy.defaults.ttl, policy.defaults.max_ttl) == (timedelta(hours=1),
                                                               timedelta(hours=12))
    assert policy.rules == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("45", 45),
     ("1d2h3m4s", 93784)],
)
def test_durations(text: str, seconds: int) -> None:
    policy = load_policy_text(MINIMAL + f"defaults: {{ttl: {text}, max_ttl: 3d}}\n")
    assert policy.defaults.ttl == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0", "0s", "-5", "1.5h", "1m1h", "1H", "h", '""', "true",
                                  "1h 30m", "99999d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(MINIMAL + f"defaults:\n  ttl: {text}\n")
    assert (caught.value.line, caught.value.column) == (4, 8)


def test_match_subject_accepts_one_string_or_a_list() -> None:
    rules = (
        "rules:\n"
        "  - {id: one, effect: deny, match: {subject: UONE}}\n"
        "  - {id: many, effect: deny, match: {subject: [UA, UB]}}\n"
    )
    policy = load_policy_text(MINIMAL + rules)
    assert [rule.match.subject for rule in policy.rules] == [("UONE",), ("UA", "UB")]


def test_yaml_1_1_booleans_stay_strings() -> None:
    # PyYAML's default would turn NO into False; here it is a subject like any other.
    policy = load_policy_text(MINIMAL + "rules:\n  - {id: r, effect: deny, match: {subject: NO}}\n")
    assert policy.rules[0].match.subject == ("NO",)


def test_full_rule_parses_into_typed_values() -> None:
    policy = load_policy([DATA / "policies" / "basic.yaml"])
    writer = next(rule for rule in policy.rules if rule.id == "orders-writer")
    assert writer.match.source is IdentitySource.NKEY
    assert writer.grant is not None
    assert writer.grant.ttl == timedelta(minutes=15)
    assert writer.grant.responses is not None
    assert (writer.grant.responses.max, writer.grant.responses.ttl) == (1, timedelta(seconds=5))
    assert writer.grant.limits is not None
    assert (writer.grant.limits.subs, writer.grant.limits.payload,
            writer.grant.limits.data) == (100, 1048576, -1)


def test_models_are_frozen() -> None:
    policy = load_policy([DATA / "policies" / "basic.yaml"])
    with pytest.raises(ValidationError):
        policy.rules[0].id = "changed"  # type: ignore[misc]


def test_policy_refuses_duplicate_ids_even_when_built_in_code() -> None:
    policy = load_policy([DATA / "policies" / "basic.yaml"])
    with pytest.raises(ValidationError):
        type(policy)(rules=policy.rules + policy.rules[:1], revision=policy.revision)


def test_no_paths_is_an_error() -> None:
    with pytest.raises(PolicyError):
        load_policy([])


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputFault) as caught:
        load_policy([tmp_path])
    assert (caught.value.file, caught.value.code) == (str(tmp_path), "directory_empty")


def test_rule_locations_point_into_the_files_the_rules_came_from() -> None:
    policy = load_policy([DATA / "errors" / "dup_rule_ids" / "a.yaml",
                          DATA / "policies" / "basic.yaml"])
    where = rule_locations(policy, ("id",))
    assert set(where) == {rule.id for rule in policy.rules}
    a = where[policy.rules[0].id]
    assert (Path(a.file), a.line, a.column) == (DATA / "errors/dup_rule_ids/a.yaml", 4, 9)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(MINIMAL.encode() + b"#" * MAX_FILE_BYTES)
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    assert (caught.value.file, caught.value.line) == (str(path), 0)


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.encode() + b"rules:\n  - id: caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        load_policy([path])
    assert (caught.value.line, caught.value.column) == (4, 12)


def test_control_character_is_located() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(MINIMAL + "rules:\n  - id: a\x07b\n")
    assert (caught.value.line, caught.value.column) == (4, 10)
