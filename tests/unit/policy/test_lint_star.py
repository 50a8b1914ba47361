"""``star_unsealed``: a subscribe allow ``P.*`` beside an allow of the same grant that reaches
under ``P.*.>``; authsvc cannot add the deny ``P.*.>`` that stops nats-server delivering
``P.x.y`` to ``SUB P.>`` without cutting that allow, so the grant receives every deeper
subject under ``P``."""

from __future__ import annotations

import pytest
import yaml

from authsvc.policy import load_policy_text
from authsvc.policy.lint import lint


def codes(allow: list[str], deny: list[str] | None = None) -> list[str]:
    rule = {"id": "r", "match": {"source": "oidc", "issuer": "https://idp.example",
                                 "claims": {"tenant": {"pattern": "^[a-z]+$"}}},
            "grant": {"account": "APP", "subscribe": {"allow": allow, "deny": deny or []}}}
    text = yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": [rule]})
    return [w.code for w in lint(load_policy_text(text))]


@pytest.mark.parametrize("allow", [
    ["tenants.acme.*", "tenants.acme.public.>"],
    ["tenants.{{claims.tenant}}.*", "tenants.{{claims.tenant}}.public.>"],
    ["tenants.acme.*", "tenants.*.audit.log"],
    ["orders.v2.*", ">"],
])
def test_a_star_allow_beside_a_deeper_allow_warns(allow: list[str]) -> None:
    assert codes(allow).count("star_unsealed") == 1


@pytest.mark.parametrize(("allow", "deny"), [
    (["tenants.acme.*"], []),                                     # sealed at mint time
    (["tenants.{{claims.tenant}}.*", "tenants.shared.>"], []),     # elsewhere for most tenants
    (["tenants.{{claims.tenant}}.*", "tenants.{{claims.team}}.x.>"], []),  # placeholders differ
    (["tenants.acme.*.b", "tenants.acme.x.>"], []),               # * inside: nothing to seal
    (["tenants.acme.*", "tenants.acme.public.>"], ["tenants.acme.public.>"]),  # denied anyway
    (["tenants.acme.*", "tenants.acme.public.>"], ["tenants.acme.*.>"]),       # sealed by hand
])
def test_sealable_or_sealed_allows_do_not(allow: list[str], deny: list[str]) -> None:
    assert "star_unsealed" not in codes(allow, deny)
