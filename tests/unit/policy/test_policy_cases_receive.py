"""``policy test`` answers ``can_receive``/``cannot_receive`` as nats-server delivers, for a
subscribe allow ending in ``*`` (which accepts ``SUB P.>``): sealed, deeper subjects cannot be
received; beside a deeper allow that keeps it unsealed, they can, and the case says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from authsvc.policy.testing import run_files

ISSUER = "https://idp.example"
READER = {"id": "tenant-reader",
          "match": {"source": "oidc", "issuer": ISSUER,
                    "claims": {"tenant": {"pattern": "^[a-z]+$"}}},
          "grant": {"account": "APP", "subscribe": {"allow": ["tenants.{{claims.tenant}}.*"]}}}
GUARDRAIL = {"id": "secrets", "effect": "deny", "permissions": {"subscribe": ["tenants.*.secret"]}}
PUBLIC = {"id": "public", "match": {"source": "oidc", "issuer": ISSUER},
          "grant": {"account": "APP", "subscribe": {"allow": ["tenants.acme.public.>"]}}}
DEEP = ["tenants.acme.orders.private.payroll", "tenants.acme.secret.db-password"]


def failures(tmp_path: Path, rules: list[dict[str, object]], key: str) -> list[str]:
    policy = {"apiVersion": "authsvc/v1", "kind": "Policy", "rules": rules}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    case = {"name": "reader", "identity": {"source": "oidc", "issuer": ISSUER, "subject": "r1",
                                           "attributes": {"tenant": "acme"}},
            "expect": {"decision": "allow", "can_receive": ["tenants.acme.orders"],
                       key: DEEP}}
    tests = {"apiVersion": "authsvc/v1", "kind": "PolicyTest", "policy": ["policy.yaml"],
             "cases": [case]}
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(tests))
    (result,) = run_files([tmp_path / "cases.yaml"]).cases
    return list(result.failures)


def test_a_sealed_grant_cannot_receive_deeper_subjects(tmp_path: Path) -> None:
    assert failures(tmp_path, [READER, GUARDRAIL], "cannot_receive") == []


@pytest.mark.parametrize("key", ["cannot_receive", "can_receive"])
def test_an_unsealed_grant_receives_them_and_the_case_says_so(tmp_path: Path, key: str) -> None:
    found = failures(tmp_path, [READER, GUARDRAIL, PUBLIC], key)
    assert found == ([f"cannot_receive: {subject}" for subject in DEEP]
                     if key == "cannot_receive" else [])
