"""What the demo prints last: how to check its audit log with the audit commands.

The commands name the audit public key (the key checkpoints are signed with) so that
``audit verify`` checks the signatures and not only the hash chain; without a key it can
say no more than that the chain is consistent.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

DAY = timedelta(days=1)


def program() -> str:
    """``authsvc`` when it is on PATH, else the script next to this Python (a venv)."""
    if shutil.which("authsvc"):
        return "authsvc"
    beside = Path(sys.executable).parent / "authsvc"
    if not beside.is_file():
        return "authsvc"
    relative = os.path.relpath(beside)  # .venv/bin/authsvc after scripts/demo.sh
    return shlex.quote(beside.as_posix() if relative.startswith("..") else relative)


def period(audit_path: Path) -> tuple[str, str]:
    """Whole UTC days covering every record: ``--from`` (inclusive) and ``--to`` (exclusive)."""
    times = []
    for line in audit_path.read_text().splitlines():
        try:
            stamp = str(json.loads(line)["time"])
            times.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
        except (ValueError, KeyError, TypeError):
            continue
    first, last = (min(times), max(times)) if times else (datetime.now(UTC),) * 2
    return first.date().isoformat(), (last.date() + DAY).isoformat()


def verify_hint(audit_path: Path, audit_key: str, *, command: str | None = None) -> str:
    """The lines telling the user how to verify and report on the demo's audit log."""
    cmd = command or program()
    log = shlex.quote(str(audit_path))
    start, end = period(audit_path)
    report = shlex.quote(str(audit_path.parent / "report.html"))
    return "\n".join([
        "",
        "Check the audit log yourself: its checkpoints are signed with the demo's audit key",
        "(keys/audit.nk in the workdir); give verify its public key to check the signatures.",
        f"  audit public key: {audit_key}",
        f"  {cmd} audit verify {log} --key {audit_key}",
        f"  {cmd} audit report {log} --from {start} --to {end} --key {audit_key} "
        f"--out {report}",
    ])
