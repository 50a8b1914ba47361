"""audit report, rendered by a real headless Chromium: what the auditor sees is checked.

The DOM Chromium builds (``--dump-dom``) must show the totals, tables and verdict, with
hostile values as text; its screenshot must show the chart, with allow and deny bars in
proportion to the counts. Chromium is Debian's package, which scripts/bootstrap.sh
installs when it is missing (as root, with apt-get).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from authsvc.audit import AuditLog, FileSink
from authsvc.audit.keychange import KEY_CHANGED_TYPE, RecordedKeys, changed_fields, compare
from authsvc.audit.report import NO_POLICY
from authsvc.cli import main
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.integration.audit.png import colours

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed; "
                                "scripts/bootstrap.sh installs Debian's package as root")
START = datetime(2026, 3, 1, tzinfo=UTC)
HOSTILE = 'nkey:<img src=x onerror="alert(1)">'
ALLOW_RGB, DENY_RGB = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)
OLD_KEYS = {"issuer": "AOLDISSUER", "xkey": None, "account_signing": {}}
NEW_KEYS = {"issuer": "ANEWISSUER", "xkey": "XNEWXKEY", "account_signing": {}}


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def _log(folder: Path, signer: KeyPair) -> tuple[int, int]:
    """Two days of decisions under two policy revisions; returns (allows, denials)."""
    clock = Clock()
    log = AuditLog(FileSink(folder / "audit.jsonl", fsync=False), instance="vm-1",
                   clock=clock, signer=signer, checkpoint_every=0)
    allows = denials = 0
    for hour in range(48):
        clock.at = START + timedelta(hours=hour)
        if hour == 24:
            log.event("policy.activated", revision="rev-two")
            previous = RecordedKeys(OLD_KEYS, 1, "", "service.start", "")
            log.event(KEY_CHANGED_TYPE, **changed_fields(
                previous, compare(OLD_KEYS, NEW_KEYS), NEW_KEYS))
        for n in range(hour % 4 + 1):
            who = HOSTILE if n == 3 else f"nkey:U{n}"
            log.append({"type": "decision", "decision": "allow", "reason": "allowed",
                        "account": "APP" if n % 2 else "OPS", "rule_ids": [f"rule-{n}"],
                        "identity": {"source": "nkey", "principal": who},
                        "policy_revision": "rev-one" if hour < 24 else "rev-two"})
            allows += 1
        if hour % 2 == 0:
            reason = "audit_unavailable" if hour == 10 else "no_matching_rule"
            log.append({"type": "decision", "decision": "deny", "reason": reason,
                        "user_nkey": "UINTRUDER"})
            denials += 1
        log.checkpoint()
    log.close()
    return allows, denials


def _chromium(*args: str) -> bytes:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *args],
            capture_output=True, timeout=60, check=True)
    return done.stdout


VOID = {"meta", "br", "img", "line", "rect", "input"}


class _Dom(HTMLParser):
    """Text by element id, table rows (cell texts) by table id, and every tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.text: defaultdict[str, str] = defaultdict(str)
        self.rows: defaultdict[str, list[list[str]]] = defaultdict(list)
        self.tags: list[str] = []
        self._open: list[str | None] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self._open.append(dict(attrs).get("id"))
        table = next(filter(None, reversed(self._open)), None)
        if tag == "tr" and table:
            self.rows[table].append([])
        elif tag == "td":
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            table = next(filter(None, reversed(self._open)), "")
            self.rows[table][-1].append(self._cell)
            self._cell = None
        if self._open and tag not in VOID:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in filter(None, self._open):
            self.text[ident] += data
        if self._cell is not None:
            self._cell += data

    def table(self, ident: str) -> dict[str, list[str]]:
        """Body rows keyed by their first cell."""
        return {row[0]: row[1:] for row in self.rows[ident] if row}


def _rendered_dom(page: Path) -> _Dom:
    dom = _Dom()
    dom.feed(_chromium("--dump-dom", page.as_uri()).decode())
    return dom


def _report(source: Path, out: Path, signer: KeyPair) -> int:
    return main(["audit", "report", str(source), "--from", "2026-03-01", "--to", "2026-03-03",
                 "--key", signer.public_key, "--out", str(out)])


def test_the_report_shows_totals_tables_chart_and_verdict(tmp_path: Path) -> None:
    signer = KeyPair.create(Prefix.USER)
    allows, denials = _log(tmp_path / "log", signer)
    page = tmp_path / "report.html"
    assert _report(tmp_path / "log", page, signer) == 0
    dom = _rendered_dom(page)
    assert dom.text["integrity"] == "INTACT"
    assert dom.text["total-allow"] == f"{allows:,}" and dom.text["total-deny"] == str(denials)
    assert dom.text["total-decisions"] == f"{allows + denials:,}"
    assert dom.table("deny-reasons") == {"no_matching_rule": [str(denials - 1)],
                                         "audit_unavailable": ["1"]}
    assert dom.table("deny-identities") == {"(unverified) UINTRUDER": [str(denials)]}
    assert dom.table("pipeline")["denials with audit_unavailable"] == ["1"]
    revisions = dom.table("revisions")
    half = str(allows // 2)  # denials carry no revision here: refused before evaluation
    assert revisions["rev-one"][:2] == [half, "0"] and revisions["rev-two"][:2] == [half, "1"]
    assert revisions[NO_POLICY][:2] == [str(denials), "0"]
    assert sum(int(row[0].replace(",", "")) for row in revisions.values()) == allows + denials
    assert "signatures-note" not in dom.text  # a key was given
    grants = dom.table("grants")
    assert grants["nkey:U0"][:3] == ["OPS", "48", "rule-0"]
    assert grants[HOSTILE][:2] == ["APP", "12"]  # shown as text ...
    assert "img" not in dom.tags and "script" not in dom.tags  # ... never as markup
    assert dom.tags.count("rect") == 48 + 24  # a bar per hour, plus the deny bars
    key_changes = [row for row in dom.rows["key-changes"] if row]
    assert [row[1:] for row in key_changes] == [
        ["vm-1", "issuer", "replaced", "AOLDISSUER", "ANEWISSUER"],
        ["vm-1", "xkey", "added", "(none)", "XNEWXKEY"]]
    assert {row[0] for row in key_changes} == {"2026-03-02T00:00:00.000Z"}

    shot = tmp_path / "report.png"
    _chromium("--window-size=1100,900", f"--screenshot={shot}", page.as_uri())
    pixels = colours(shot)
    green, red = pixels[ALLOW_RGB], pixels[DENY_RGB]
    assert green > 10_000 and red > 1_000  # both kinds of bar are drawn
    assert abs(green / red - allows / denials) < 0.15 * allows / denials  # in proportion


def test_a_broken_chain_shows_as_broken(tmp_path: Path) -> None:
    signer = KeyPair.create(Prefix.USER)
    _log(tmp_path / "log", signer)
    path = tmp_path / "log" / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:30] + lines[31:]))  # one record deleted
    page = tmp_path / "report.html"
    assert _report(tmp_path / "log", page, signer) == 1
    dom = _rendered_dom(page)
    assert dom.text["integrity"] == "BROKEN"
    [row] = dom.rows["integrity-table"][1:]
    assert row[1] == "BROKEN" and row[-1].startswith("seq_gap")


def test_a_torn_end_shows_as_torn_as_verify_says(tmp_path: Path) -> None:
    signer = KeyPair.create(Prefix.USER)
    _log(tmp_path / "log", signer)
    path = tmp_path / "log" / "audit.jsonl"
    # A record cut mid-write after the last checkpoint (a crash): every complete record is
    # signed, so the verdict is TORN (cutting a signed record would leave it UNSIGNED).
    path.write_bytes(path.read_bytes() + b'{"v":2,"type":"decision","time":"2026-03-01T')
    page = tmp_path / "report.html"
    assert _report(tmp_path / "log", page, signer) == 3
    dom = _rendered_dom(page)
    assert dom.text["integrity"] == "TORN"
    [row] = dom.rows["integrity-table"][1:]
    assert row[1] == "TORN" and row[-1] == "none"
    assert "torn-note" in dom.text
