"""The demo's working directory: cleared at each run, but only when the demo made it.

``authsvc demo --workdir DIR`` starts from a clean directory each time. Clearing a
directory the user named is destructive, so the demo clears only a directory that is
empty or carries the marker file a previous demo run left in it; anything else is refused
with an error naming the directory, and nothing in it is touched.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from authsvc.errors import ConfigError

MARKER = ".authsvc-demo"
MARKER_TEXT = ("This directory was created by `authsvc demo`. The next demo run with this\n"
               "--workdir deletes everything in it.\n")
# What a demo from before the marker existed wrote; only used to word the refusal.
_OLDER_DEMO_CONFIG = "authsvc.yaml"
_OLDER_DEMO_HINT = "idp.demo.authsvc.invalid"


def claim(workdir: Path) -> None:
    """Make ``workdir`` an empty directory holding only the demo's marker.

    Raises ConfigError (exit 2), touching nothing, when ``workdir`` is a file, or a
    non-empty directory without the marker.
    """
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"demo --workdir {workdir} exists and is not a directory; "
                          "choose another --workdir")
    if workdir.is_dir():
        entries = list(workdir.iterdir())
        if entries and not (workdir / MARKER).is_file():
            raise ConfigError(_refusal(workdir))
        for entry in entries:
            _remove(entry)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text(MARKER_TEXT)


def _remove(entry: Path) -> None:
    # A symlink is removed, never followed: the demo deletes only what is inside workdir.
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _refusal(workdir: Path) -> str:
    text = (f"demo --workdir {workdir} is not empty and was not created by the demo (it "
            f"has no {MARKER} marker); the demo clears its workdir at each run, so it "
            "refuses to use this one. Choose a new or empty directory")
    config = workdir / _OLDER_DEMO_CONFIG
    try:
        older = config.is_file() and _OLDER_DEMO_HINT in config.read_text(errors="replace")
    except OSError:
        older = False
    if older:
        text += (". It looks like the workdir of an earlier authsvc version's demo: if so, "
                 f"delete it yourself once (rm -r {shlex.quote(str(workdir))}); later runs "
                 "reuse it")
    return text
