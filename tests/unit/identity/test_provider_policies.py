"""The example policies match what the provider profiles produce from realistic tokens.

``policies/examples/*.yaml`` and their PolicyTest cases describe identities by hand; here the
identity comes from the verifier instead, so a renamed attribute breaks this test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authsvc.domain import Allow, ClientInfo, ConnectOptions, ConnectRequest, ServerInfo
from authsvc.policy import evaluate, load_policy
from tests.unit.identity.test_providers import NOW, identity, verifier, verify

EXAMPLES = Path(__file__).resolve().parents[3] / "policies" / "examples"
REQUEST = ConnectRequest(server=ServerInfo(id="N1"), user_nkey="U2", client=ClientInfo(),
                         connect=ConnectOptions(), request_id="r", issued_at=NOW,
                         expires_at=NOW)


@pytest.mark.parametrize(("policy", "issuer", "token", "account", "publish"), [
    ("kubernetes.yaml",
     {"issuer": "https://oidc.cluster.example", "provider": "kubernetes",
      "audiences": ["nats"]},
     "kubernetes-projected", "APPS", "svc.payments.>"),
    ("github-actions.yaml",
     {"issuer": "https://token.actions.githubusercontent.com", "provider": "github",
      "audiences": ["nats://prod"]},
     "github-actions-environment", "DEPLOY", "deploy.api.requests"),
    ("okta.yaml",
     {"issuer": "https://corp.okta.com/oauth2/default", "provider": "okta",
      "audiences": ["api://nats"], "claims": {"tenant": "string", "email_verified": "bool"}},
     "okta-access", "TENANTS", "tenants.acme.requests"),
])
async def test_example_policy_admits_the_verified_identity(
        policy: str, issuer: dict[str, Any], token: str, account: str, publish: str) -> None:
    found = identity(await verify(verifier(**issuer), token))
    decision = evaluate(found, REQUEST, load_policy([EXAMPLES / policy]), NOW)
    assert isinstance(decision, Allow), decision
    assert decision.grant.account == account
    assert publish in decision.grant.permissions.pub.allow


async def test_github_pull_request_is_not_a_deploy() -> None:
    github = verifier(issuer="https://token.actions.githubusercontent.com", provider="github",
                      audiences=["nats://prod"])
    found = identity(await verify(github, "github-actions-pull-request"))
    decision = evaluate(found, REQUEST, load_policy([EXAMPLES / "github-actions.yaml"]), NOW)
    assert not isinstance(decision, Allow)
