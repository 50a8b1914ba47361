"""audit export: the period's records and a manifest that re-verifies, and detects edits."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authsvc.audit.export import Query, export, parse_filters
from authsvc.audit.manifest import MANIFEST, check, sha256_file
from authsvc.cli import main
from authsvc.commands.audit_export import Progress, chain_line
from authsvc.commands.audit_keys import NOT_CHECKED, unsigned_note
from authsvc.errors import AuditError
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair
from tests.unit.audit.conftest import START, MakeLog, decision


def _log(make_log: MakeLog, count: int = 60) -> Path:
    log = make_log()
    for n in range(count):
        log.append(decision(n, "deny" if n % 3 == 0 else "allow"))
        if n % 20 == 19:
            log.checkpoint()
    log.close()
    return log.sink.path.parent


def _export(source: Path, out: Path, signer: KeyPair, **query: object) -> dict[str, object]:
    q = Query(start=START + timedelta(seconds=30), end=START + timedelta(seconds=80),
              **query)  # type: ignore[arg-type]
    return export([source], q, out, tool_version="test", keys=frozenset({signer.public_key}),
                  check=nkeys.verify)


def _check(out: Path, signer: KeyPair) -> list[str]:
    result = check(out / MANIFEST, keys=frozenset({signer.public_key}),
                   signature_check=nkeys.verify)
    return [p["code"] for p in result.problems]


def test_an_export_reverifies_from_its_manifest(make_log: MakeLog, signer: KeyPair,
                                               tmp_path: Path) -> None:
    manifest = _export(_log(make_log), tmp_path / "out", signer)
    [chain] = manifest["chains"]  # type: ignore[misc]
    assert chain["source_verification"]["result"] == "intact"
    assert chain["source_verification"]["checkpoints_verified"] == 3
    assert chain["anchor"]["seq"] == chain["first_seq"] - 1
    # runs on past the period to the next signed checkpoint, which covers every row
    assert chain["extended_to_checkpoint"] == chain["last_seq"]
    assert chain["exported"] == chain["last_seq"] - chain["first_seq"] + 1
    assert manifest["files"][0]["sha256"] == sha256_file(tmp_path / "out" / "records.jsonl")  # type: ignore[index]
    assert _check(tmp_path / "out", signer) == []


def _rewrite(out: Path, change: object, *, fix_manifest: bool) -> None:
    path = out / "records.jsonl"
    lines = path.read_bytes().splitlines()
    lines = change(lines)  # type: ignore[operator]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    if fix_manifest:  # the forger also updates the manifest's hash and row count
        manifest = json.loads((out / MANIFEST).read_text())
        manifest["files"][0].update(sha256=sha256_file(path), rows=len(lines))
        (out / MANIFEST).write_text(json.dumps(manifest))


def _edit(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[3])
    record["reason"] = "explicit_deny"  # any change to any field
    return [*lines[:3], json.dumps(record).encode(), *lines[4:]]


@pytest.mark.parametrize(("change", "fix_manifest", "codes"), [
    (_edit, False, {"file_hash_mismatch", "record_altered", "chain_broken"}),
    (_edit, True, {"record_altered", "chain_broken"}),
    (lambda lines: lines[:4] + lines[5:], True, {"chain_count_mismatch", "chain_broken"}),
    (lambda lines: lines[:-1], False, {"file_hash_mismatch", "row_count_mismatch",
                                       "chain_count_mismatch", "chain_range_mismatch"}),
])
def test_a_modified_export_is_detected(make_log: MakeLog, signer: KeyPair, tmp_path: Path,
                                       change: object, fix_manifest: bool,
                                       codes: set[str]) -> None:
    _export(_log(make_log), tmp_path / "out", signer)
    _rewrite(tmp_path / "out", change, fix_manifest=fix_manifest)
    assert set(_check(tmp_path / "out", signer)) == codes


def test_csv_export_with_filters(make_log: MakeLog, signer: KeyPair, tmp_path: Path) -> None:
    source = _log(make_log)
    manifest = _export(source, tmp_path / "out", signer, format="csv",
                       filters=parse_filters(["decision=deny"]))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "records.csv").read_text())))
    assert rows and {r["decision"] for r in rows} == {"deny"}
    assert manifest["rows"] == len(rows)
    assert manifest["chains"][0]["extended_to_checkpoint"] is None  # type: ignore[index]
    assert _check(tmp_path / "out", signer) == []
    (tmp_path / "out" / "records.csv").write_text("tampered\n")
    assert set(_check(tmp_path / "out", signer)) == {"file_hash_mismatch", "row_count_mismatch"}


def test_csv_cells_never_run_as_formulas(make_log: MakeLog, signer: KeyPair,
                                         tmp_path: Path) -> None:
    log = make_log()
    log.append({"type": "decision", "decision": "deny", "reason": "=HYPERLINK(1)",
                "time": (START + timedelta(seconds=40)).isoformat()})
    log.close()
    _export(log.sink.path.parent, tmp_path / "out", signer, format="csv")
    [row] = csv.DictReader(io.StringIO((tmp_path / "out" / "records.csv").read_text()))
    assert row["reason"] == "'=HYPERLINK(1)"


def test_unknown_filter_keys_are_refused() -> None:
    with pytest.raises(AuditError):
        parse_filters(["password=x"])


def test_cli_export_then_verify_manifest(make_log: MakeLog, signer: KeyPair,
                                         tmp_path: Path) -> None:
    source = _log(make_log)
    out = tmp_path / "march"
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to",
                 "2026-03-02", "--out", str(out), "--key", signer.public_key]) == 0
    assert main(["audit", "verify", "--manifest", str(out / MANIFEST),
                 "--key", signer.public_key]) == 0
    (out / "records.jsonl").write_bytes(b"")
    assert main(["audit", "verify", "--manifest", str(out / MANIFEST)]) == 1
    assert main(["audit", "export", str(source), "--from", "2026-03-02", "--to",
                 "2026-03-01", "--out", str(out)]) == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_for_large_exports() -> None:
    for stream, total, shown in ((_Terminal(), 8 << 20, True), (io.StringIO(), 8 << 20, False),
                                 (_Terminal(), 1000, False)):
        progress = Progress(stream, total)
        for _ in range(8):
            progress(total // 8)
        progress.finish()
        assert ("100%" in stream.getvalue()) is shown


def test_period_is_utc_and_dates_are_midnight() -> None:
    from authsvc.commands.audit_export import moment
    assert moment("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert moment("2026-03-01T10:00:00Z").hour == 10


def test_an_empty_period_is_exported_as_evidence_of_no_records(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    source = _log(make_log)
    out = tmp_path / "april"
    assert main(["audit", "export", str(source), "--from", "2026-04-01", "--to", "2026-05-01",
                 "--out", str(out), "--key", signer.public_key]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    [chain] = manifest["chains"]
    assert manifest["rows"] == 0 and chain["exported"] == 0
    assert chain["instance"] == "test"  # named even though no record was taken
    assert chain["source_verification"]["result"] == "intact"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == chain_line(chain, manifest["sources"][0])
    assert "None" not in lines[0]
    assert main(["audit", "verify", "--manifest", str(out / MANIFEST),
                 "--key", signer.public_key]) == 0


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_an_export_never_overwrites_earlier_evidence(make_log: MakeLog, signer: KeyPair,
                                                     tmp_path: Path) -> None:
    source = _log(make_log)
    out = tmp_path / "march"
    argv = ["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
            "--out", str(out), "--key", signer.public_key]
    assert main(argv) == 0
    (out / "auditor-notes.txt").write_text("signed off")
    before = _snapshot(out)
    assert main([*argv, "--format", "csv"]) == 2
    assert _snapshot(out) == before
    assert main([*argv, "--format", "csv", "--force"]) == 0
    after = _snapshot(out)
    assert set(after) == {MANIFEST, "records.csv", "auditor-notes.txt"}  # the old export's
    assert after["auditor-notes.txt"] == b"signed off"  # files replaced, nothing else
    assert _check(out, signer) == []


def test_an_export_is_never_written_among_its_sources(make_log: MakeLog, signer: KeyPair,
                                                      tmp_path: Path) -> None:
    source = _log(make_log)
    before = _snapshot(source)
    for force in ([], ["--force"]):
        assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to",
                     "2026-03-02", "--out", str(source), *force]) == 2
    assert _snapshot(source) == before


def test_without_a_key_the_manifest_check_says_signatures_were_not_checked(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _export(_log(make_log), tmp_path / "out", signer)
    capsys.readouterr()
    assert main(["audit", "verify", "--manifest", str(tmp_path / "out" / MANIFEST)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"result: INTACT ({NOT_CHECKED})")
    assert out.endswith(unsigned_note() + "\n")
    assert main(["audit", "verify", "--manifest", str(tmp_path / "out" / MANIFEST),
                 "--key", signer.public_key]) == 0
    assert unsigned_note() not in capsys.readouterr().out


# Records anyone with write access to the log could have crafted, each with one member of
# the wrong type. They hash and chain correctly: only the readers are under test here.
CRAFTED = {
    "time": {"type": "decision", "decision": "allow", "time": "2026-03-01T00:00:05"},
    "identity": {"type": "decision", "decision": "deny", "reason": "x", "identity": "nkey:UA"},
    "rule_ids": {"type": "decision", "decision": "allow", "rule_ids": 5},
    "client": {"type": "decision", "decision": "allow", "client": ["h"]},
    "jwt": {"type": "decision", "decision": "allow", "jwt": "x"},
    "decision": {"type": "decision", "decision": ["allow", "deny"]},
}
ALL_FILTERS = ["--filter", "principal=nkey:UA", "--filter", "rule=r", "--filter",
               "client_host=h", "--filter", "key_role=issuer", "--filter", "decision=allow",
               "--filter", "superseded=false"]


def _crafted(make_log: MakeLog, member: str) -> Path:
    log = make_log()
    log.event("service.start")
    log.append(dict(CRAFTED[member]))
    log.event("service.stop")
    log.close()
    return log.sink.path.parent


@pytest.mark.parametrize("member", sorted(CRAFTED))
@pytest.mark.parametrize("options", [[], ["--format", "csv"], ALL_FILTERS],
                         ids=["jsonl", "csv", "filtered"])
def test_a_member_of_the_wrong_type_is_counted_not_a_crash(
        make_log: MakeLog, tmp_path: Path, member: str, options: list[str]) -> None:
    out = tmp_path / "out"
    assert main(["audit", "export", str(_crafted(make_log, member)), "--from", "2026-03-01",
                 "--to", "2026-03-02", "--out", str(out), *options]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    [chain] = manifest["chains"]
    assert chain["malformed_fields"] == {member: 1}
    assert main(["audit", "verify", "--manifest", str(out / MANIFEST)]) == 0


def test_a_matching_value_of_the_wrong_type_matches_no_filter(make_log: MakeLog,
                                                              tmp_path: Path) -> None:
    source = _crafted(make_log, "decision")  # "decision": ["allow", "deny"]
    out = tmp_path / "out"
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
                 "--out", str(out), "--filter", "decision=allow"]) == 0
    assert json.loads((out / MANIFEST).read_text())["rows"] == 0


def test_an_export_that_fails_part_way_leaves_nothing_behind(make_log: MakeLog,
                                                             signer: KeyPair,
                                                             tmp_path: Path) -> None:
    source, out = _log(make_log), tmp_path / "march"

    def interrupted(done: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the middle of a large export

    query = Query(start=START, end=START + timedelta(days=1))
    with pytest.raises(KeyboardInterrupt):
        export([source], query, out, tool_version="test", progress=interrupted)
    assert not out.exists()
    out.mkdir()
    (out / "auditor-notes.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt):
        export([source], query, out, tool_version="test", progress=interrupted, replace=True)
    assert [p.name for p in out.iterdir()] == ["auditor-notes.txt"]
    (out / "auditor-notes.txt").unlink()
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
                 "--out", str(out), "--key", signer.public_key]) == 0  # no --force needed
    assert _check(out, signer) == []


def _superseded_log(make_log: MakeLog) -> tuple[Path, str, str]:
    """A kept allow, and an allow at the period's last moment whose fsync failed: its
    error record comes after another request's record from the next day."""
    log = make_log()
    allow = {"type": "decision", "decision": "allow", "reason": "allowed", "account": "APP"}
    kept = dict(allow, time="2026-03-01T12:00:00.000Z")
    lost = dict(allow, time="2026-03-01T23:59:59.999Z")
    log.append(kept)
    log.append(lost)
    log.append({"type": "decision", "decision": "deny", "reason": "no_matching_rule",
                "time": "2026-03-02T00:00:00.002Z"})
    log.append({"type": "decision", "decision": "error", "reason": "audit_unavailable",
                "supersedes": lost["event_id"], "time": "2026-03-01T23:59:59.999Z"})
    log.close()
    return log.sink.path.parent, kept["event_id"], lost["event_id"]


def _csv_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "records.csv").read_text())))


@pytest.mark.parametrize(("superseded", "expected"), [("false", "kept"), ("true", "lost")])
def test_the_grants_population_can_leave_out_superseded_allows(
        make_log: MakeLog, tmp_path: Path, superseded: str, expected: str) -> None:
    source, kept, lost = _superseded_log(make_log)
    out = tmp_path / "grants"
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
                 "--out", str(out), "--format", "csv", "--filter", "type=decision",
                 "--filter", "decision=allow", "--filter", f"superseded={superseded}"]) == 0
    assert [row["event_id"] for row in _csv_rows(out)] == [{"kept": kept, "lost": lost}[expected]]


def test_the_csv_names_the_allow_an_error_record_supersedes(make_log: MakeLog,
                                                            tmp_path: Path) -> None:
    source, _, lost = _superseded_log(make_log)
    out = tmp_path / "all"
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-03",
                 "--out", str(out), "--format", "csv"]) == 0
    assert [row["supersedes"] for row in _csv_rows(out)] == ["", "", "", lost]


def test_superseded_is_true_or_false(make_log: MakeLog, tmp_path: Path) -> None:
    source, _, _ = _superseded_log(make_log)
    assert main(["audit", "export", str(source), "--from", "2026-03-01", "--to", "2026-03-02",
                 "--out", str(tmp_path / "out"), "--filter", "superseded=yes"]) == 2
    assert not (tmp_path / "out").exists()


def test_with_a_key_an_export_of_an_unsigned_tail_exits_4(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path) -> None:
    log = make_log()
    log.append({"type": "decision", "decision": "allow", "reason": "allowed"})
    log.close()  # no checkpoint: nothing signs the record
    source, out = log.sink.path.parent, tmp_path / "out"
    period = ["--from", "2026-03-01", "--to", "2026-03-02"]
    assert main(["audit", "export", str(source), *period, "--out", str(out),
                 "--key", signer.public_key]) == 4
    assert (out / MANIFEST).exists()  # written, and it says why
    assert main(["audit", "export", str(source), *period, "--out", str(tmp_path / "plain")]) \
        == 0  # without a key nothing signed is claimed
