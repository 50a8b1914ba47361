"""The key set last recorded in the log on disk, found by reading the files backwards.

Every checkpoint restates the key set, so after a clean stop it is in the last record and
otherwise within one checkpoint interval (or one rotated file) of the end: the search reads
little, however long the log. Logs written before key sets were restated have them only in
``service.start``; ``budget`` caps how far back the search reads for those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from authsvc.audit.files import log_files
from authsvc.audit.keychange import RecordedKeys, recorded
from authsvc.errors import AuditError

# Canonical JSON (sorted keys, no spaces; chain.canonical) writes a ``keys`` object member
# exactly so, and a string value cannot hold an unescaped quote.
NEEDLE = b'"keys":{'
CHUNK = 1 << 20
BUDGET = 256 << 20  # bytes; one full file at the default audit.rotate_bytes


def last_recorded(active: Path, *, budget: int = BUDGET) -> RecordedKeys | None:
    """The newest record (in the active file, then rotated ones) that states a key set.

    None when there is none within ``budget`` bytes. Raises AuditError when a file cannot
    be read.
    """
    remaining = budget
    for path in reversed(log_files(active)):
        try:
            for body, read in _complete_lines_backwards(path):
                found = _newest_in(body)
                if found is not None:
                    return found
                remaining -= read
                if remaining <= 0:
                    return None
        except OSError as exc:
            raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    return None


def _newest_in(body: bytes) -> RecordedKeys | None:
    """The last key-set record among complete lines (``body`` ends with a newline)."""
    end = len(body)
    while (hit := body.rfind(NEEDLE, 0, end)) >= 0:
        start = body.rfind(b"\n", 0, hit) + 1
        try:
            record = json.loads(body[start:body.index(b"\n", hit)])
        except ValueError:
            record = None
        found = recorded(record) if isinstance(record, dict) else None
        if found is not None:
            return found
        end = start
    return None


def _complete_lines_backwards(path: Path) -> Iterator[tuple[bytes, int]]:
    """Runs of whole lines from the end of ``path`` to its start, and the bytes read.

    Bytes after the last newline (a torn record) are skipped; a line cut by a chunk edge
    is carried into the next (earlier) run.
    """
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        carry, torn = b"", True
        while end > 0:
            start = max(0, end - CHUNK)
            handle.seek(start)
            data = handle.read(end - start) + carry
            read, end = end - start, start
            if torn:  # drop what follows the file's last newline
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = b""
                    continue
                data, torn = data[:cut + 1], False
            split = data.find(b"\n") + 1 if start > 0 else 0
            carry, body = data[:split], data[split:]
            yield body, read
