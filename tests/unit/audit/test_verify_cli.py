"""``authsvc audit verify``: exit status and the summary a user reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authsvc.cli import main
from authsvc.natsconf.keystore import KeyStore
from tests.unit.audit.conftest import MakeLog, decision


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    KeyStore(tmp_path / "keys").ensure(operator_mode=False)
    return tmp_path / "keys"


def _log(make_log: MakeLog, tmp_path: Path, keys_dir: Path) -> Path:
    from authsvc.audit import AuditLog, FileSink
    from tests.unit.audit.conftest import StepClock
    audit = AuditLog(FileSink(tmp_path / "logs" / "audit.jsonl", fsync=False), instance="t",
                     clock=StepClock(), signer=KeyStore(keys_dir).audit_signer(),
                     checkpoint_every=0)
    for n in range(12):
        audit.append(decision(n, "allow" if n % 3 else "deny"))
    audit.checkpoint()
    audit.close()
    return tmp_path / "logs"


def test_intact_directory_exits_0(make_log: MakeLog, tmp_path: Path, keys_dir: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["result"] == "intact"
    assert summary["decisions"] == {"allow": 8, "deny": 4}
    assert summary["checkpoints_verified"] == 1 and summary["signatures_checked"]


def test_break_exits_1_and_names_the_position(make_log: MakeLog, tmp_path: Path,
                                              keys_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    path = logs / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[7]
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(path), "--keys-dir", str(keys_dir), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["first_break"]["kind"] == "seq_gap"
    assert (summary["first_break"]["line"], summary["first_break"]["seq"]) == (8, 9)
    assert summary["gaps"] == [{"from": 8, "to": 8}]


def test_torn_tail_exits_3(make_log: MakeLog, tmp_path: Path, keys_dir: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    path = logs / "audit.jsonl"
    path.write_bytes(path.read_bytes()[:-25])
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir)]) == 3
    assert "torn record" in capsys.readouterr().out


def test_wrong_key_exits_1(make_log: MakeLog, tmp_path: Path, keys_dir: Path) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    other = KeyStore(tmp_path / "other")
    other.ensure(operator_mode=False)
    assert main(["audit", "verify", str(logs), "--keys-dir", str(tmp_path / "other")]) == 1


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "verify", "--help"])
    assert info.value.code == 0 and "Exit status" in capsys.readouterr().out
