"""One real deployment per {config, operator} x {xkey off, on}, shared by the suite, each
running exactly the nats-server config `authsvc nats-config` generates.

``probed`` is the same four with the test-only PROBE account added to the server config
(tests/support/probe.py), so tests can hand the running authsvc crafted requests through the
real server; only the tests that need that use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.deploy import Deployment, iter_modes

INFO = "$SYS.REQ.USER.INFO"


def suite_rules(d: Deployment) -> list[dict[str, Any]]:
    """The policy every suite deployment runs with."""
    def nkey(name: str) -> dict[str, Any]:
        return {"source": "nkey", "subject": d.identity(name).public_key}

    return [
        {"id": "writer", "match": nkey("writer"), "grant": {
            "account": "APP", "ttl": "10m",
            "publish": {"allow": ["orders.v2.created", INFO]},
            "subscribe": {"allow": ["orders.v2.>", "_INBOX.>"], "deny": ["orders.v2.secret"]}}},
        {"id": "reader", "match": nkey("reader"), "grant": {
            "account": "APP", "subscribe": {"allow": ["orders.v2.>"]}}},
        {"id": "ops", "match": nkey("ops"), "grant": {
            "account": "OPS", "publish": {"allow": ["ops.>", INFO]},
            "subscribe": {"allow": ["_INBOX.>"]}}},
        {"id": "short", "match": nkey("short"), "grant": {
            "account": "APP", "ttl": "2s", "subscribe": {"allow": ["short.>"]}}},
        {"id": "blocked-allow", "match": nkey("blocked"), "grant": {
            "account": "APP", "subscribe": {"allow": [">"]}}},
        {"id": "blocked-deny", "effect": "deny", "match": nkey("blocked")},
    ]


def mode_id(param: tuple[str, bool]) -> str:
    return f"{param[0]}-xkey-{'on' if param[1] else 'off'}"


@pytest.fixture(scope="session", params=list(iter_modes()), ids=mode_id)
def deployment(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    mode, xkey = request.param
    d = Deployment(tmp_path_factory.mktemp(mode_id(request.param)), mode=mode, xkey=xkey)
    d.rules = suite_rules(d)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="session", params=list(iter_modes()), ids=mode_id)
def probed(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    mode, xkey = request.param
    d = Deployment(tmp_path_factory.mktemp("probed-" + mode_id(request.param)), mode=mode,
                   xkey=xkey, with_probe=True)
    d.rules = suite_rules(d)
    d.start()
    yield d
    d.stop()
