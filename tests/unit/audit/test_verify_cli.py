"""``authsvc audit verify``: exit status and the summary a user reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from authsvc.cli import main
from authsvc.commands.audit_keys import NOT_CHECKED, problem, unsigned_note
from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol.nkeys import KeyPair, Prefix
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
    with path.open("ab") as handle:  # a crash in the write after the checkpoint
        handle.write(b'{"type":"decision","decision":"al')
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["result"] == "torn"


def test_torn_checkpoint_leaves_an_unsigned_tail_which_wins_over_torn(
        make_log: MakeLog, tmp_path: Path, keys_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    path = logs / "audit.jsonl"
    path.write_bytes(path.read_bytes()[:-25])  # the checkpoint itself cut mid-write
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir), "--json"]) == 4
    summary = json.loads(capsys.readouterr().out)
    assert (summary["result"], summary["unsigned_tail"]) == ("unsigned", 12)
    assert summary["torn"] == [{"file": "audit.jsonl", "bytes": len(path.read_bytes()
                                                                    .split(b"\n")[-1])}]
    assert main(["audit", "verify", str(logs)]) == 3  # without a key: as before


def test_wrong_key_exits_1(make_log: MakeLog, tmp_path: Path, keys_dir: Path) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    other = KeyStore(tmp_path / "other")
    other.ensure(operator_mode=False)
    assert main(["audit", "verify", str(logs), "--keys-dir", str(tmp_path / "other")]) == 1


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "verify", "--help"])
    assert info.value.code == 0 and "Exit status" in capsys.readouterr().out


def _bad_keys() -> dict[str, str]:
    seed = KeyPair.create(Prefix.USER).seed
    return {"garbage": "garbage", "seed": seed,
            "account": KeyPair.create(Prefix.ACCOUNT).public_key}


@pytest.mark.parametrize("kind", ["garbage", "seed", "account"])
@pytest.mark.parametrize("command", [
    ["audit", "verify", "LOG"], ["audit", "verify", "--manifest", "LOG/MANIFEST.json"],
    ["audit", "export", "LOG", "--from", "2026-03-01", "--to", "2026-03-02", "--out", "OUT"],
    ["audit", "report", "LOG", "--from", "2026-03-01", "--to", "2026-03-02", "--out", "OUT"],
])
def test_a_malformed_key_is_an_input_error(make_log: MakeLog, tmp_path: Path, keys_dir: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           command: list[str], kind: str) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    key = _bad_keys()[kind]
    argv = [str(logs) if a == "LOG" else str(tmp_path / "out") if a == "OUT"
            else a.replace("LOG", str(logs)) for a in command]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--key", key])
    assert info.value.code == 2  # not 1: nothing was verified
    assert key not in capsys.readouterr().err  # never echoed: it may be a seed
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("prefix", "named"), [
    (Prefix.ACCOUNT, "an account"), (Prefix.OPERATOR, "an operator"), (Prefix.SERVER, "a server")])
def test_a_public_key_of_another_kind_is_named_in_plain_english(prefix: Prefix,
                                                                named: str) -> None:
    # The message is the feature here: it said "a account public key".
    reason = problem(KeyPair.create(prefix).public_key)
    assert reason is not None and reason.startswith(f"{named} public key,")


@pytest.mark.parametrize("content", ["", "garbage\n", "{valid} {seed}\n"])
def test_a_key_file_without_valid_keys_is_an_input_error(make_log: MakeLog, tmp_path: Path,
                                                        keys_dir: Path, content: str,
                                                        capsys: pytest.CaptureFixture[str],
                                                        ) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    seed = KeyPair.create(Prefix.USER).seed
    key_file = tmp_path / "audit.pub"
    key_file.write_text(content.format(valid=KeyStore(keys_dir).audit_signer().public_key,
                                       seed=seed))
    assert main(["audit", "verify", str(logs), "--key-file", str(key_file)]) == 2
    assert main(["audit", "verify", str(logs), "--key-file", str(tmp_path / "none")]) == 2
    assert seed not in capsys.readouterr().err


def test_a_key_file_with_the_key_verifies(make_log: MakeLog, tmp_path: Path,
                                          keys_dir: Path) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    key_file = tmp_path / "audit.pub"
    key_file.write_text(KeyStore(keys_dir).audit_signer().public_key + "\n")
    assert main(["audit", "verify", str(logs), "--key-file", str(key_file)]) == 0


CHECKPOINTS = re.compile(r"^checkpoints: (\d+) \((\d+) signature\(s\) (verified|NOT checked)",
                         re.MULTILINE)


def test_without_a_key_the_text_says_signatures_were_not_checked(
        make_log: MakeLog, tmp_path: Path, keys_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    assert main(["audit", "verify", str(logs)]) == 0  # exit status unchanged: chain intact
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first == f"result: INTACT ({NOT_CHECKED})"
    assert unsigned_note() in out
    [(total, unchecked, state)] = CHECKPOINTS.findall(out)
    assert (total, unchecked, state) == ("1", "1", "NOT checked")

    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "result: INTACT" and unsigned_note() not in out
    assert CHECKPOINTS.findall(out) == [("1", "1", "verified")]


def test_an_unsigned_tail_exits_4_with_a_key_and_0_without(
        make_log: MakeLog, tmp_path: Path, keys_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from authsvc.audit import AuditLog, FileSink
    from tests.unit.audit.conftest import StepClock
    logs = _log(make_log, tmp_path, keys_dir)
    audit = AuditLog(FileSink(logs / "audit.jsonl", fsync=False), instance="t",
                     clock=StepClock(), signer=KeyStore(keys_dir).audit_signer(),
                     checkpoint_every=0)
    audit.append(decision(99))  # written after the last checkpoint, as on a live log
    audit.close()
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir), "--json"]) == 4
    summary = json.loads(capsys.readouterr().out)
    assert (summary["result"], summary["unsigned_tail"], summary["unsigned_from"]) == (
        "unsigned", 1, 14)
    assert main(["audit", "verify", str(logs)]) == 0  # no key: signatures NOT checked


@pytest.mark.parametrize("layout", ["empty-dir", "empty-file", "no-audit-files"])
def test_nothing_to_verify_exits_2(tmp_path: Path, keys_dir: Path, layout: str) -> None:
    target = tmp_path / "logs"
    target.mkdir()
    if layout == "empty-file":
        target = target / "audit.jsonl"
        target.write_bytes(b"")
    elif layout == "no-audit-files":
        (target / "notes.txt").write_text("not an audit file")
    assert main(["audit", "verify", str(target), "--keys-dir", str(keys_dir)]) == 2


def _fetched(make_log: MakeLog, tmp_path: Path, keys_dir: Path) -> Path:
    """What `audit fetch --out` writes: one folder per chain."""
    out = tmp_path / "stream"
    for name in ("a", "b"):
        logs = _log(make_log, tmp_path / name, keys_dir)
        (out / name).mkdir(parents=True)
        (logs / "audit.jsonl").rename(out / name / "audit.jsonl")
    return out


def test_a_folder_of_chains_is_verified_chain_by_chain(
        make_log: MakeLog, tmp_path: Path, keys_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = _fetched(make_log, tmp_path, keys_dir)
    assert main(["audit", "verify", str(out), "--keys-dir", str(keys_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [c["result"] for c in summary["chains"]] == ["intact", "intact"]
    assert [c["records"] for c in summary["chains"]] == [13, 13]

    lines = (out / "b" / "audit.jsonl").read_bytes().splitlines(keepends=True)
    del lines[4]
    (out / "b" / "audit.jsonl").write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(out), "--keys-dir", str(keys_dir), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["result"] == "broken"
    assert [c["result"] for c in summary["chains"]] == ["intact", "broken"]
    # one chain's files and a folder of chains are not one chain
    assert main(["audit", "verify", str(out / "a" / "audit.jsonl"), str(out)]) == 2
    # an anchor starts one trimmed chain, not several
    assert main(["audit", "verify", str(out), "--anchor", "1:" + "0" * 64]) == 2


@pytest.mark.parametrize("command", ["verify", "export", "report"])
def test_a_stray_audit_file_beside_chain_folders_is_refused_not_verified_instead(
        make_log: MakeLog, tmp_path: Path, keys_dir: Path, command: str) -> None:
    # Someone who can write files but not sign drops a genuine old chain beside the chain
    # folders; reading it alone would leave a tampered chain folder unchecked.
    out = _fetched(make_log, tmp_path, keys_dir)
    lines = (out / "b" / "audit.jsonl").read_bytes().splitlines(keepends=True)
    del lines[4]
    (out / "b" / "audit.jsonl").write_bytes(b"".join(lines))
    (out / "old.jsonl").write_bytes((out / "a" / "audit.jsonl").read_bytes())
    period = ["--from", "2026-03-01", "--to", "2026-03-02"]
    argv = {"verify": ["audit", "verify", str(out), "--keys-dir", str(keys_dir)],
            "export": ["audit", "export", str(out), *period, "--out", str(tmp_path / "x")],
            "report": ["audit", "report", str(out), *period,
                       "--out", str(tmp_path / "r.html")]}[command]
    assert main(argv) == 2


def test_crafted_lines_exit_1_without_a_traceback(make_log: MakeLog, tmp_path: Path,
                                                  keys_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    logs = _log(make_log, tmp_path, keys_dir)
    path = logs / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"reason":"allowed"', b'"reason":"\\ud800"')
    lines[12] = lines[12].replace(b'"seq_last":12', b'"seq_last":1e400')
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(logs), "--keys-dir", str(keys_dir), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["first_break"]["kind"], summary["first_break"]["line"]) == ("malformed", 3)


def test_after_retention_deletes_old_files_the_rest_verifies_from_an_anchor(
        tmp_path: Path, keys_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from authsvc.audit import AuditLog, FileSink, Rotation
    from authsvc.audit.verify import expand
    from tests.unit.audit.conftest import StepClock

    logs = tmp_path / "logs"
    audit = AuditLog(FileSink(logs / "audit.jsonl", fsync=False), instance="t",
                     clock=StepClock(), signer=KeyStore(keys_dir).audit_signer(),
                     checkpoint_every=0, rotation=Rotation(max_bytes=2000))
    for n in range(40):
        audit.append(decision(n))
    audit.checkpoint()
    audit.close()
    files = expand([logs])
    assert len(files) >= 3
    oldest = files[0]
    last = json.loads(oldest.read_bytes().splitlines()[-1])  # its closing checkpoint
    assert last["type"] == "audit.checkpoint"
    anchor = f"{last['seq']}:{last['record_hash']}"
    oldest.unlink()  # retention
    key = ["--keys-dir", str(keys_dir)]
    assert main(["audit", "verify", str(logs), *key]) == 1  # the deleted records are a gap
    assert main(["audit", "verify", str(logs), *key, "--anchor", anchor]) == 0
    capsys.readouterr()
    wrong = f"{last['seq']}:{'0' * 64}"
    assert main(["audit", "verify", str(logs), *key, "--anchor", wrong, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_break"]["kind"] == "prev_mismatch"
    assert main(["audit", "verify", str(logs), *key, "--anchor", "12:xyz"]) == 2
    period = ["--from", "2026-03-01", "--to", "2026-03-02"]
    for command, out in (("export", ["--out", str(tmp_path / "x")]),
                         ("report", ["--out", str(tmp_path / "r.html")])):
        assert main(["audit", command, str(logs), *period, *key, *out]) == 1  # the gap
        assert main(["audit", command, str(logs), *period, *key, "--anchor", anchor,
                     *out, *(["--force"] if command == "export" else [])]) == 0
