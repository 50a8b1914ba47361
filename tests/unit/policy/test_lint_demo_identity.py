"""``demo_identity``: an allow rule naming a public key from ``demo_keys`` (the demo
identities, whose seeds anyone can derive) warns; without ``demo_keys`` nothing is flagged."""

from __future__ import annotations

import pytest
import yaml

from authsvc.demo.identities import ORDERS_SERVICE, demo_keypair
from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint

DEMO = demo_keypair(ORDERS_SERVICE).public_key
OTHER = "UAEXAMPLE2PLACEHOLDER2REPLACE2WITH2YOUR2SERVICE2KEY2BTET"
DEMO_KEYS = {DEMO: ORDERS_SERVICE}


def codes(match: dict[str, object], effect: str = "allow",
          demo_keys: dict[str, str] | None = DEMO_KEYS) -> list[str]:
    rule: dict[str, object] = {"id": "r", "effect": effect, "match": match}
    if effect == "allow":
        rule["grant"] = {"account": "APP", "publish": {"allow": ["svc.a"]}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text), demo_keys=demo_keys)]


@pytest.mark.parametrize("match", [
    {"source": "nkey", "subject": DEMO},
    {"source": "nkey", "subject": [OTHER, DEMO]},
    {"source": "nkey", "subject_glob": DEMO},
])
def test_an_allow_rule_naming_a_demo_key_warns(match: dict[str, object]) -> None:
    assert codes(match).count("demo_identity") == 1


@pytest.mark.parametrize("match", [
    {"source": "nkey", "subject": OTHER},
    {"source": "nkey", "subject_glob": "U*"},  # names no key
])
def test_other_keys_do_not(match: dict[str, object]) -> None:
    assert "demo_identity" not in codes(match)


def test_a_deny_rule_refusing_a_demo_key_does_not_warn() -> None:
    assert "demo_identity" not in codes({"source": "nkey", "subject": DEMO}, effect="deny")


def test_without_demo_keys_nothing_is_flagged() -> None:
    assert "demo_identity" not in codes({"source": "nkey", "subject": DEMO}, demo_keys=None)
