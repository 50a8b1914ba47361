"""The demo identities' public keys, and which policies lint flags them in: every policy but
the shipped demo policy alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authsvc.cli import main
from authsvc.demo.identities import NAMES, SHIPPED_POLICY, demo_keypair, keys_to_flag, public_keys

ROOT = Path(__file__).parents[3]


def test_public_keys_are_derived_from_every_demo_identity() -> None:
    assert dict(public_keys()) == {demo_keypair(name).public_key: name for name in NAMES}


def test_the_shipped_demo_policy_alone_is_exempt(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ROOT.resolve() / "policies" / "demo.yaml" == SHIPPED_POLICY
    assert keys_to_flag([str(SHIPPED_POLICY)]) == {}
    monkeypatch.chdir(ROOT)
    assert keys_to_flag(["policies/demo.yaml"]) == {}  # as `policy check policies/` names it


def test_a_copy_or_a_combination_is_flagged(tmp_path: Path) -> None:
    copy = tmp_path / "demo.yaml"
    shutil.copy(SHIPPED_POLICY, copy)
    assert keys_to_flag([str(copy)]) == public_keys()
    assert keys_to_flag([str(SHIPPED_POLICY), str(copy)]) == public_keys()


def test_policy_check_locates_the_warning_in_a_copy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "prod.yaml"
    shutil.copy(SHIPPED_POLICY, copy)
    assert main(["policy", "check", str(SHIPPED_POLICY)]) == 0
    assert "[demo_identity]" not in capsys.readouterr().out
    assert main(["policy", "check", "--strict", str(copy)]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "[demo_identity]" in line]
    assert [line.split(": ")[0] for line in lines] == [f"{copy}:9:5", f"{copy}:20:5"]
