"""Server advisories become audit fields by allow-list: never the user JWT."""

from __future__ import annotations

import json

from authsvc.audit.ingest import auth_error_fields


def test_only_allow_listed_fields_are_kept() -> None:
    advisory = {"type": "io.nats.server.advisory.v1.client_disconnect", "id": "x1",
                "server": {"id": "NABC", "name": "n1", "cluster": "c", "ver": "2.15.1"},
                "client": {"id": 9, "host": "10.0.0.1", "user": "UA", "name": "app",
                           "jwt": "eyJ.secret.sig", "nonce": "abc"},
                "reason": "Authentication Timeout"}
    fields = auth_error_fields(json.dumps(advisory).encode())
    assert fields["nats_client"] == {"id": 9, "host": "10.0.0.1", "name": "app"}
    assert fields["nats_server"]["id"] == "NABC"
    assert fields["nats_reason"] == "Authentication Timeout"
    assert "eyJ" not in json.dumps(fields)


def test_the_connect_user_is_never_kept() -> None:
    """A token-only leaf remote URL makes nats-server report the token as ``client.user``."""
    bearer = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJsZWFmLTEifQ.c2lnbmF0dXJl"
    advisory = {"client": {"id": 9, "kind": "Leafnode", "user": bearer},
                "reason": "Auth callout service returned an error: connection_not_allowed"}
    fields = auth_error_fields(json.dumps(advisory).encode())
    assert fields["nats_client"] == {"id": 9, "kind": "Leafnode"}
    assert "c2lnbmF0dXJl" not in json.dumps(fields)


def test_garbage_is_recorded_as_malformed() -> None:
    assert auth_error_fields(b"\xff not json")["malformed"] is True
    assert auth_error_fields(b"[1]")["malformed"] is True
