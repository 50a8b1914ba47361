"""demo --workdir: cleared only when the demo made it (its marker) or it is empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.cli import main
from authsvc.demo.workdir import MARKER, claim
from authsvc.errors import ConfigError


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_directory_with_other_files_is_refused_and_left_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = tmp_path / "mine"
    (workdir / "notes").mkdir(parents=True)
    (workdir / "thesis.txt").write_text("three years of work")
    (workdir / "notes" / "a.md").write_text("more")
    before = _tree(workdir)
    assert main(["demo", "--workdir", str(workdir)]) == 2
    assert _tree(workdir) == before  # nothing deleted, no marker added
    err = capsys.readouterr().err
    assert err.startswith("authsvc: error:") and str(workdir) in err


def test_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep")
    with pytest.raises(ConfigError):
        claim(target)
    assert target.read_text() == "keep"


@pytest.mark.parametrize("existing", [False, True])
def test_a_new_or_empty_directory_is_claimed(tmp_path: Path, existing: bool) -> None:
    workdir = tmp_path / "a" / "demo"
    if existing:
        workdir.mkdir(parents=True)
    claim(workdir)
    assert [p.name for p in workdir.iterdir()] == [MARKER]


def test_a_marked_directory_is_cleared_without_following_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the demo's")
    workdir = tmp_path / "demo"
    claim(workdir)
    (workdir / "keys").mkdir()
    (workdir / "keys" / "audit.nk").write_text("old seed")
    (workdir / "audit.jsonl").write_text("{}\n")
    (workdir / "link").symlink_to(outside, target_is_directory=True)
    claim(workdir)  # the next run
    assert [p.name for p in workdir.iterdir()] == [MARKER]
    assert (outside / "keep.txt").read_text() == "not the demo's"
