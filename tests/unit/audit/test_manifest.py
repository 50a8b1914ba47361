"""verify --manifest: a manifest is checked for shape before use, and with a key the export
must end with a checkpoint whose signature covers every exported record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authsvc.audit.chain import ChainHead, canonical, link
from authsvc.audit.manifest import MANIFEST, check, sha256_file
from authsvc.cli import main
from authsvc.protocol import nkeys
from authsvc.protocol.nkeys import KeyPair
from tests.unit.audit.conftest import MakeLog, decision


def _export(make_log: MakeLog, tmp_path: Path, *, signed_end: bool, to: str = "2026-03-02",
            **options: str) -> Path:
    """A log of 20 decisions, a checkpoint after the 10th; by default one period covers
    it all."""
    log = make_log()
    for n in range(20):
        log.append(decision(n, "deny" if n % 4 == 0 else "allow"))
        if n == 9 or (signed_end and n == 19):
            log.checkpoint()
    log.close()
    out = tmp_path / "out"
    extra = [arg for key, value in options.items() for arg in (f"--{key}", value)]
    assert main(["audit", "export", str(log.sink.path.parent), "--from", "2026-03-01",
                 "--to", to, "--out", str(out), *extra]) == 0
    return out / MANIFEST


def _verify(manifest: Path, signer: KeyPair | None, capsys: pytest.CaptureFixture[str],
            ) -> tuple[int, dict[str, Any]]:
    key = ["--key", signer.public_key] if signer else []
    capsys.readouterr()  # the export's own output
    code = main(["audit", "verify", "--manifest", str(manifest), "--json", *key])
    return code, json.loads(capsys.readouterr().out)


def _codes(summary: dict[str, Any]) -> list[str]:
    return [p["code"] for p in summary["problems"]]


def test_an_export_ending_in_a_verified_checkpoint_is_intact(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True)
    assert _verify(manifest, signer, capsys) == (0, {
        "result": "intact", "rows": 22, "chains_verified": 1, "signatures_checked": True,
        "problems": [], "unsigned": []})


def test_an_export_past_the_last_checkpoint_is_unsigned_with_a_key(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _export(make_log, tmp_path, signed_end=False)
    code, summary = _verify(manifest, signer, capsys)
    assert (code, summary["result"], summary["problems"]) == (4, "unsigned", [])
    [chain] = summary["unsigned"]
    assert chain["records"] == 10 and chain["after_checkpoint"]["seq_last"] == 10
    assert _verify(manifest, None, capsys)[0] == 0  # without a key: as before


def _rewrite(manifest: Path, change: Any) -> None:
    """Edit records.jsonl and make the manifest match, as a forger without the key would."""
    records = manifest.parent / "records.jsonl"
    lines = change(records.read_bytes().splitlines())
    records.write_bytes(b"".join(line + b"\n" for line in lines))
    data = json.loads(manifest.read_text())
    data["files"][0].update(sha256=sha256_file(records), rows=len(lines))
    last = json.loads(lines[-1])
    data["chains"][0].update(exported=len(lines), last_seq=last["seq"],
                             last_hash=last["record_hash"])
    manifest.write_text(json.dumps(data))


def _without_checkpoints(lines: list[bytes]) -> list[bytes]:
    first = json.loads(lines[0])
    head = ChainHead(first["seq"] - 1, first["prev_hash"])  # the anchor
    rebuilt = []
    for raw in lines:
        record = json.loads(raw)
        if record["type"] != "audit.checkpoint":
            line, head = link(record, head)
            rebuilt.append(line)
    return rebuilt


def test_a_rebuilt_export_without_its_checkpoints_never_passes_with_a_key(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True)
    _rewrite(manifest, _without_checkpoints)
    code, summary = _verify(manifest, signer, capsys)
    assert (code, summary["result"], summary["problems"]) == (4, "unsigned", [])
    assert summary["unsigned"][0]["records"] == 20


def test_an_export_run_on_to_a_checkpoint_must_end_with_it(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True, to="2026-03-01T00:00:10Z")
    [chain] = json.loads(manifest.read_text())["chains"]
    assert chain["extended_to_checkpoint"] == chain["last_seq"] == 11
    assert _verify(manifest, signer, capsys)[0] == 0

    def drop_the_checkpoint(lines: list[bytes]) -> list[bytes]:
        return lines[:-1]

    _rewrite(manifest, drop_the_checkpoint)
    code, summary = _verify(manifest, signer, capsys)
    assert (code, _codes(summary)) == (1, ["chain_range_mismatch"])
    assert _verify(manifest, None, capsys)[0] == 1  # the claim is checked without a key too


def test_a_duplicated_name_in_an_exported_record_is_altered(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True, filter="decision=deny")

    def allow_first(lines: list[bytes]) -> list[bytes]:
        return [b'{"decision":"allow",' + lines[0][1:], *lines[1:]]

    _rewrite(manifest, allow_first)
    code, summary = _verify(manifest, signer, capsys)
    assert code == 1 and _codes(summary)[0] == "record_altered"


BAD_MANIFESTS = {
    "a-list": lambda m: [m],
    "file-without-sha256": lambda m: {**m, "files": [
        {k: v for k, v in m["files"][0].items() if k != "sha256"}]},
    "chain-without-instance": lambda m: {**m, "chains": [
        {k: v for k, v in m["chains"][0].items() if k != "instance"}]},
    "files-as-a-string": lambda m: {**m, "files": "records.jsonl"},
    "anchor-seq-not-a-number": lambda m: {**m, "chains": [
        {**m["chains"][0], "anchor": {**m["chains"][0]["anchor"], "seq": "x"}}]},
    "rows-a-float": lambda m: {**m, "files": [{**m["files"][0], "rows": 22.0}]},
}


@pytest.mark.parametrize("damage", sorted(BAD_MANIFESTS))
def test_a_manifest_of_the_wrong_shape_is_unreadable_not_a_crash(
        make_log: MakeLog, signer: KeyPair, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], damage: str) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True)
    manifest.write_text(json.dumps(BAD_MANIFESTS[damage](json.loads(manifest.read_text()))))
    code, summary = _verify(manifest, signer, capsys)
    assert (code, summary["result"], _codes(summary)) == (1, "broken", ["manifest_unreadable"])


def test_a_manifest_with_a_repeated_name_is_unreadable(make_log: MakeLog, signer: KeyPair,
                                                       tmp_path: Path) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True)
    text = manifest.read_text()
    manifest.write_text('{"chains":[],' + text.lstrip()[1:])  # which "chains" counts?
    result = check(manifest, keys=frozenset({signer.public_key}), signature_check=nkeys.verify)
    assert [p["code"] for p in result.problems] == ["manifest_unreadable"]


def test_a_missing_manifest_is_an_input_error(tmp_path: Path) -> None:
    assert main(["audit", "verify", "--manifest", str(tmp_path / MANIFEST)]) == 2


def test_canonical_export_lines_stay_canonical(make_log: MakeLog, tmp_path: Path) -> None:
    manifest = _export(make_log, tmp_path, signed_end=True)
    for raw in (manifest.parent / "records.jsonl").read_bytes().splitlines():
        assert canonical(json.loads(raw)) == raw
