"""The README's first command: the demo admits and refuses exactly as its policy says."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from authsvc.demo.aws import DemoSts
from tests.support.deploy import AUTHSVC


@pytest.mark.parametrize("mode", ["config", "operator"])
def test_demo_runs_end_to_end(tmp_path: Path, mode: str) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.run([*AUTHSVC, "demo", "--mode", mode, "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
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


def test_demo_skips_the_aws_client_without_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "moto" else real(name, *a))
    assert DemoSts.start() is None
