"""The accounts a policy may not grant, as serve and `policy check -c` both apply them."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.account_checks import (
    DEFAULT_FORBIDDEN,
    check_policy_accounts,
    forbidden_accounts,
    refused_grants,
    unsigned_accounts,
)
from authsvc.errors import ConfigError
from authsvc.minting import Mode
from authsvc.policy import Policy, load_policy_text
from authsvc.settings import Settings


def _policy(*accounts: str) -> Policy:
    rules = "".join(f"  - id: r{n}\n    match: {{source: nkey}}\n    grant: {{account: {a}}}\n"
                    for n, a in enumerate(accounts))
    return load_policy_text(f"apiVersion: authsvc/v1\nkind: Policy\nrules:\n{rules}")


def _settings(mode: str, callout: str = "AUTH") -> Settings:
    return Settings.model_validate({"nats": {"mode": mode, "callout_account": callout},
                                    "policy": {"paths": [Path("p.yaml")]}})


def test_the_callout_account_always_and_the_system_account_in_operator_mode() -> None:
    assert forbidden_accounts(_settings("config", "CALLOUT")) == {"CALLOUT", "$SYS"}
    assert forbidden_accounts(_settings("operator")) == {"AUTH", "SYS", "$SYS"}


def test_refused_grants_name_each_rule() -> None:
    policy = _policy("APP", "AUTH", "$SYS", "AUTH")
    assert refused_grants(policy, DEFAULT_FORBIDDEN) == [
        ("r1", "AUTH"), ("r2", "$SYS"), ("r3", "AUTH")]


def test_serve_refuses_forbidden_and_in_operator_mode_unsigned_accounts() -> None:
    with pytest.raises(ConfigError):
        check_policy_accounts(_policy("APP", "AUTH"), Mode.CONFIG, {}, frozenset({"AUTH"}))
    check_policy_accounts(_policy("APP"), Mode.CONFIG, {}, frozenset({"AUTH"}))
    assert unsigned_accounts(_policy("APP", "OPS"), ["APP"]) == ["OPS"]
    with pytest.raises(ConfigError):
        check_policy_accounts(_policy("APP", "OPS"), Mode.OPERATOR, ["APP"], frozenset())
