"""The README's first command: the demo admits and refuses exactly as its policy says."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from authsvc.demo.aws import DemoSts
from authsvc.demo.workdir import MARKER, claim
from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol.nkeys import KeyPair, Prefix
from tests.support.deploy import AUTHSVC


def _earlier_run(workdir: Path) -> None:
    """What a previous demo run leaves: its marker, keys and an audit log."""
    claim(workdir)
    (workdir / "keys").mkdir()
    (workdir / "keys" / "audit.nk").write_text(KeyPair.create(Prefix.USER).seed)
    (workdir / "audit.jsonl").write_text('{"stale": true}\n')


@pytest.mark.parametrize("mode", ["config", "operator"])
def test_demo_runs_end_to_end(tmp_path: Path, mode: str) -> None:
    workdir = tmp_path / "demo"
    _earlier_run(workdir)  # run after run: the demo clears the workdir it made
    proc = subprocess.run([*AUTHSVC, "demo", "--mode", mode, "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (workdir / MARKER).is_file()
    records = [json.loads(line) for line in (workdir / "audit.jsonl").read_text().splitlines()]
    decisions = [(r["decision"], r["reason"], tuple(r["rule_ids"]))
                 for r in records if r.get("type") == "decision"]
    assert decisions == [
        ("allow", "allowed", ("orders-service",)),
        ("allow", "allowed", ("analytics-reader",)),
        ("deny", "no_matching_rule", ()),
        ("allow", "allowed", ("edge-worker",)),
        ("deny", "token_expired", ()),
        ("allow", "allowed", ("orders-lambda",)),
    ]
    edge = next(r for r in records if r.get("rule_ids") == ["edge-worker"])
    assert edge["permissions"]["pub"]["allow"] == ["orders.acme.created"]
    assert edge["identity"]["source"] == "oidc"
    aws = next(r for r in records if r.get("rule_ids") == ["orders-lambda"])
    assert aws["identity"]["principal"] == "aws:arn:aws:iam::123456789012:role/orders-lambda"
    assert aws["permissions"]["pub"]["allow"] == ["orders.v2.created"]
    _check_printed_commands(proc.stdout, workdir, tmp_path)


def _printed(stdout: str, action: str) -> list[str]:
    """The arguments after ``authsvc`` of the printed ``authsvc audit ACTION`` command."""
    [line] = [line for line in stdout.splitlines() if f" audit {action} " in line]
    words = shlex.split(line)
    return words[words.index("audit"):]


def _check_printed_commands(stdout: str, workdir: Path, tmp_path: Path) -> None:
    """The demo's closing commands verify its log, checkpoint signatures included."""
    key = KeyStore(workdir / "keys").audit_signer().public_key
    assert f"audit public key: {key}" in [line.strip() for line in stdout.splitlines()]
    verify = _printed(stdout, "verify")
    assert verify[verify.index("--key") + 1] == key
    done = subprocess.run([*AUTHSVC, *verify, "--json"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["signatures_checked"] and summary["checkpoints_verified"] >= 1
    report = _printed(stdout, "report")
    out = report.index("--out") + 1
    report[out] = str(tmp_path / "report.html")
    done = subprocess.run([*AUTHSVC, *report], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "report.html").is_file()


def test_demo_skips_the_aws_client_without_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "moto" else real(name, *a))
    assert DemoSts.start() is None
