"""The command line: every command teaches with --help; faults exit 2 with one clear line."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from authsvc.cli import build_parser, main
from authsvc.protocol.nkeys import KeyPair


@pytest.mark.parametrize("argv", [
    ["--help"], ["serve", "--help"], ["keys", "init", "--help"], ["nats-config", "--help"],
    ["demo", "--help"],
])
def test_help_exits_zero_with_examples(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: authsvc" in out


def test_keys_init_prints_public_keys_only(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    seeds = [p.read_text().strip() for p in (tmp_path / "k").iterdir()]
    assert seeds and all(seed not in out for seed in seeds)


def test_keys_user_writes_a_private_seed_and_prints_its_public_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_file = tmp_path / "svc.nk"
    assert main(["keys", "user", "--out", str(seed_file)]) == 0
    printed = capsys.readouterr().out.strip()
    seed = seed_file.read_text().strip()
    assert KeyPair.from_seed(seed).public_key == printed and printed.startswith("U")
    assert seed not in printed
    assert seed_file.stat().st_mode & 0o777 == 0o600
    assert main(["keys", "user", "--out", str(seed_file)]) == 2  # never overwritten
    assert seed_file.read_text().strip() == seed


def test_keys_init_refuses_accounts_without_operator_mode(tmp_path: Path) -> None:
    # --accounts used to be ignored in config mode: no account keys, and no word about it.
    with pytest.raises(SystemExit) as info:
        main(["keys", "init", "--dir", str(tmp_path / "k"), "--accounts", "APP"])
    assert info.value.code == 2
    assert not (tmp_path / "k").exists()
    assert main(["keys", "init", "--dir", str(tmp_path / "k"), "--mode", "operator",
                 "--accounts", "APP"]) == 0
    assert (tmp_path / "k" / "accounts" / "APP.sk.nk").is_file()


def test_keys_init_in_a_place_it_cannot_write_exits_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert main(["keys", "init", "--dir", str(tmp_path / "file" / "k")]) == 2  # no traceback


def test_keys_init_help_lists_its_files_and_exit_statuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "init", "--help"])
    text = capsys.readouterr().out
    assert "Exit status:" in text
    main(["keys", "init", "--dir", str(tmp_path / "k"), "--mode", "operator", "--accounts", "APP"])
    made = {str(p.relative_to(tmp_path / "k")).replace("APP", "NAME").replace("SYS", "NAME")
            for p in (tmp_path / "k").rglob("*") if p.is_file()}
    assert made and all(name in text for name in made)


@pytest.mark.parametrize(("text", "field"), [
    ("nats:\n  url: http://nope\n", "nats.url"),
    ("nats:\n  url: nats://127.0.0.1:99999\n", "nats.url"),
    # Used to pass, connect, then end serve in an OverflowError traceback.
    ("metrics:\n  listen: 127.0.0.1:99999\n", "metrics.listen"),
])
def test_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                             field: str) -> None:
    config = tmp_path / "authsvc.yaml"
    config.write_text(text + "policy:\n  paths: [p.yaml]\n")
    assert main(["serve", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("authsvc: error: invalid settings")
    assert field in err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser, bool]]:
    """Every parser under ``parser`` as (command path, parser, has subcommands)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser, bool(groups)
    for group in groups:
        for name, sub in group.choices.items():
            yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


@pytest.mark.parametrize(("path", "parser", "grouped"), COMMANDS,
                         ids=[" ".join(c[0]) or "authsvc" for c in COMMANDS])
def test_every_command_describes_itself_and_its_options(
        path: tuple[str, ...], parser: argparse.ArgumentParser, grouped: bool) -> None:
    if path and grouped:
        assert parser.description, "a command group without a description"
    if path and not grouped:
        assert parser.epilog and "example" in parser.epilog, "a command without an example"
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                               argparse._SubParsersAction)):
            continue
        assert action.help, f"{action.dest} has no help text"
        if action.default not in (None, False, "", [], argparse.SUPPRESS) and not action.required:
            assert "default" in action.help, f"{action.dest} does not show its default"


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_serve_help_says_what_it_does_and_how_it_stops() -> None:
    serve = _subcommands(build_parser()).choices["serve"]
    assert serve.description
    assert serve.epilog and "SIGTERM" in serve.epilog and "exits 0" in serve.epilog


def test_the_audit_help_names_every_audit_action() -> None:
    top = _subcommands(build_parser())
    [summary] = [entry.help for entry in top._choices_actions if entry.dest == "audit"]
    audit = top.choices["audit"]
    for name in _subcommands(audit).choices:  # verify, export, report, stream-init, fetch
        assert name in (audit.description or "")
        assert name.split("-")[0] in (summary or "")


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """`authsvc policy explain ... | head`: no BrokenPipeError traceback, SIGPIPE's status."""
    examples = Path(__file__).parents[2] / "policies" / "examples" / "tests"
    child = subprocess.Popen([sys.executable, "-m", "authsvc.cli", "policy", "explain",
                              str(examples)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child writes: its first flush meets a closed pipe
    err = child.stderr.read()
    assert (child.wait(timeout=60), err) == (141, b"")


LEAVES = [(path, parser) for path, parser, grouped in COMMANDS if path and not grouped]


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_states_its_exit_statuses(
        path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    # Platform teams script these commands: what each status means is part of the interface.
    assert re.search(r"\bExit(s| status)\b", parser.epilog or ""), "no exit statuses"


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # as read, whatever the line breaks


@pytest.mark.parametrize(("argv", "statuses"), [
    (["nats-config"], ["0", "2"]),
    (["audit", "stream-init"], ["0", "1", "2", "69"]),
    (["audit", "fetch"], ["0", "1", "2", "69"]),
    (["keys", "init"], ["0", "2"]),
])
def test_the_exit_statuses_each_command_can_return_are_listed(
        argv: list[str], statuses: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    section = _help(argv, capsys).split("Exit status:")[1].strip()
    assert re.findall(r"(?:^|; )(\d+) ", section) == statuses


def test_nats_config_help_says_what_operator_mode_needs_first(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["nats-config"], capsys)
    assert "authsvc keys init --dir KEYS --mode operator --accounts" in text
    top = _subcommands(build_parser())
    [summary] = [a.help for a in top._choices_actions if a.dest == "nats-config"]
    assert summary is not None and summary.startswith("write (-o) or print")


def test_stream_init_help_says_replicas_apply_only_to_a_stream_it_creates(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert "applies only when this creates the stream" in _help(["audit", "stream-init"], capsys)


def test_start_here_names_policy_check_and_health(capsys: pytest.CaptureFixture[str]) -> None:
    start = _help([], capsys).split("Start here:")[1].split("Settings come from")[0]
    for command in ("keys init", "policy check", "nats-config", "serve", "health",
                    "audit verify"):
        assert f"authsvc {command} " in start
