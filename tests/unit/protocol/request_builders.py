"""Request builders shared by the decode_request tests: bend one member, sign, expect a deny."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from authsvc.protocol.request import RequestRejected, RequestRules, decode_request
from authsvc.protocol.xkeys import CurveKeyPair
from tests.support.callout import FakeServer, make_request_claims, sign_request

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
SERVER = FakeServer.create("probe")
SERVICE = CurveKeyPair.create()
PLAIN = RequestRules()
SEALED = RequestRules(xkey=SERVICE)
DELETE = object()


def claims(**kwargs: Any) -> dict[str, Any]:
    return make_request_claims(SERVER, now=NOW, **kwargs)


def bend(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with DELETE remove) one dotted member of request claims."""
    *parents, leaf = path.split(".")
    node = base
    for name in parents:
        node = node[name]
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return base


def plaintext(path: str | None = None, value: Any = None, **kwargs: Any) -> bytes:
    c = claims(**kwargs)
    return sign_request(bend(c, path, value) if path else c, SERVER)[0]


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def raw_signed(c: dict[str, Any]) -> bytes:
    """Sign claims jwt.encode refuses to produce (non-int exp, a given jti), as a server could."""
    c = {"iss": SERVER.id} | c
    signing_input = (
        _b64(b'{"typ":"JWT","alg":"ed25519-nkey"}') + b"." + _b64(json.dumps(c).encode())
    )
    return signing_input + b"." + _b64(SERVER.signer.sign(signing_input))


def sealed(path: str | None = None, value: Any = None) -> tuple[bytes, dict[str, str]]:
    c = claims(sealed=True)
    return sign_request(
        bend(c, path, value) if path else c, SERVER, service_xkey=SERVICE.public_key
    )


def rejected(
    payload: bytes,
    headers: dict[str, str] | None = None,
    rules: RequestRules = PLAIN,
    now: datetime = NOW,
) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        decode_request(payload, headers, now=now, rules=rules)
    return info.value
