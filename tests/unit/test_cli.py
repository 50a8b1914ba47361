"""The command line: every command teaches with --help; faults exit 2 with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.cli import main


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


def test_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "authsvc.yaml"
    config.write_text("nats:\n  url: http://nope\npolicy:\n  paths: [p.yaml]\n")
    assert main(["serve", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("authsvc: error: invalid settings")
    assert "nats.url" in err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
