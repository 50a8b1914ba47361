"""The demo's identity provider: a real OIDC-style issuer on loopback.

It holds an ES256 key, publishes it as a JWKS over HTTP on 127.0.0.1, and mints ID-token
style JWTs for the demo's edge worker. authsvc verifies those tokens exactly as it would
Okta's or GitHub's: the issuer is configured by its ``iss`` value and ``jwks_uri``.
For demonstrations only: the key lives in memory and anyone on the host could fetch tokens
from this process's API (there is no login).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

DEMO_ISSUER = "https://idp.demo.authsvc.invalid"
DEMO_AUDIENCE = "nats://authsvc-demo"


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


class DemoIssuer:
    """``with DemoIssuer() as idp``: serves ``/jwks``; ``idp.token(...)`` mints a token."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex[:16]
        numbers = self._key.public_key().public_numbers()
        self._jwks = json.dumps({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": _b64(numbers.x), "y": _b64(numbers.y)}]}).encode()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def jwks_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        body = self._jwks

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path == "/jwks"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep the demo's output readable

        return Handler

    def token(self, *, subject: str, now: datetime, lifetime: timedelta,
              **claims: Any) -> str:
        """A signed token for ``subject`` with extra ``claims``."""
        payload = {"iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "sub": subject,
                   "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp()),
                   **claims}
        return jwt.encode(payload, self._key, algorithm="ES256", headers={"kid": self.kid})

    def __enter__(self) -> DemoIssuer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
