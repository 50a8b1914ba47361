"""A policy's revision names its git commit when its files live in a work tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from authsvc.policy import load_policy

POLICY = "apiVersion: authsvc/v1\nkind: Policy\nrules: []\n"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(folder: Path, *args: str) -> str:
    env_args = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    return subprocess.run(["git", "-C", str(folder), *env_args, *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_commit_and_dirty_state(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(POLICY)
    _git(tmp_path, "add", "p.yaml")
    _git(tmp_path, "commit", "-q", "-m", "policy")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert load_policy([policy_file]).git_revision == head
    policy_file.write_text(POLICY + "# edited\n")
    assert load_policy([policy_file]).git_revision == head + "+dirty"


def test_outside_git_there_is_only_the_digest(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(POLICY)
    policy = load_policy([policy_file])
    assert policy.git_revision == ""
    assert len(policy.revision) == 64
