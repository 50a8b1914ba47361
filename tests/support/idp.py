"""A tiny real OIDC issuer for tests: signing keys, token minting, and a loopback HTTP server.

API
---

``SigningKey.rsa(kid, bits=2048)``, ``SigningKey.ec(kid)``: a private key with its ``kid``
and ``alg``; ``jwk()`` is the public JWK. ``mint(key, claims, header=None)`` signs with pyjwt
(an implementation independent of ours). ``forge(header, claims, signature)`` assembles
any compact token, signed or not, for the attack cases.

``Issuer()`` is a threaded ``http.server`` on 127.0.0.1 serving
``/.well-known/openid-configuration`` and ``/jwks``; ``issuer.url`` is its ``iss``.
``keys`` (list of SigningKey) is what ``/jwks`` publishes, ``cache_control`` its header,
``down = True`` answers 503, ``delay`` sleeps before answering. ``hits`` counts JWKS GETs.
The same keys are also served at ``/cdn-cgi/access/certs`` in Cloudflare Access's shape (a
``keys`` JWKS beside PEM ``public_cert``/``public_certs``), counted in ``certs_hits``.
``POST /token`` is an OAuth2 token endpoint for the client-credentials grant (RFC 6749
4.4): ``clients`` maps client ids to secrets (HTTP Basic or form ``client_secret``), tokens
are ``typ: at+jwt`` JWTs signed with the first key, ``aud`` = ``token_audience``, living
``token_lifetime`` seconds; ``token_hits`` counts requests, ``token_forms`` keeps each form
(without the secret). Use as a context manager.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_RSA_CACHE: dict[tuple[str, int], rsa.RSAPrivateKey] = {}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str | None, bits: int = 2048, alg: str = "RS256") -> SigningKey:
        # RSA generation is slow-ish; reuse one key per (kid, size) within a test run.
        cache_key = (str(kid), bits)
        if cache_key not in _RSA_CACHE:
            _RSA_CACHE[cache_key] = rsa.generate_private_key(public_exponent=65537,
                                                             key_size=bits)
        return cls(kid, alg, _RSA_CACHE[cache_key])

    @classmethod
    def ec(cls, kid: str | None) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self, **extra: Any) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            jwk: dict[str, Any] = {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
        else:
            point = public.public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": b64url(point.x.to_bytes(32, "big")),
                   "y": b64url(point.y.to_bytes(32, "big"))}
        if self.kid is not None:
            jwk["kid"] = self.kid
        return {**jwk, "use": "sig", "alg": self.alg, **extra}


def mint(key: SigningKey, claims: Mapping[str, Any],
         header: Mapping[str, Any] | None = None) -> str:
    headers = {"kid": key.kid} if key.kid is not None else {}
    headers.update(header or {})
    with warnings.catch_warnings():  # the weak-key attack signs with RSA-1024 on purpose
        warnings.simplefilter("ignore")
        return _sign(key, claims, headers)


def _sign(key: SigningKey, claims: Mapping[str, Any], headers: dict[str, Any]) -> str:
    # PyJWS signs any payload bytes (jwt.encode would refuse the odd claims attacks need).
    return jwt.PyJWS().encode(json.dumps(dict(claims)).encode(), key.private,
                              algorithm=key.alg, headers=headers)


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    def part(value: Mapping[str, Any]) -> str:
        return b64url(json.dumps(value).encode())

    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
          cache_control: str | None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    if cache_control:
        handler.send_header("Cache-Control", cache_control)
    handler.end_headers()
    handler.wfile.write(data)


def _client_of(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    if authorization and authorization.startswith("Basic "):
        decoded = base64.b64decode(authorization[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


def _token_response(issuer: Issuer, authorization: str | None,
                    form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    client_id, secret = _client_of(authorization, form)
    issuer.token_forms.append({k: v for k, v in form.items() if k != "client_secret"})
    if form.get("grant_type") != "client_credentials":
        return 400, {"error": "unsupported_grant_type"}
    if not client_id or issuer.clients.get(client_id) != secret:
        return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": client_id, "aud": issuer.token_audience,
              "client_id": client_id, "iat": now, "exp": now + issuer.token_lifetime,
              "jti": uuid.uuid4().hex, "scope": form.get("scope", "")}
    token = mint(issuer.keys[0], claims, {"typ": "at+jwt"})
    return 200, {"access_token": token, "token_type": "Bearer",
                 "expires_in": issuer.token_lifetime, "scope": form.get("scope", "")}


def _access_certs(keys: list[SigningKey]) -> dict[str, Any]:
    # Cloudflare's certs document: the JWKS plus each key as PEM under "public_certs" (the
    # PEM here is the bare public key, standing in for the certificate: nobody reads it).
    pems = [{"kid": key.kid, "cert": key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
        for key in keys]
    return {"keys": [key.jwk() for key in keys], "public_cert": pems[0] if pems else {},
            "public_certs": pems}


@dataclass
class Issuer:
    keys: list[SigningKey] = field(default_factory=list)
    cache_control: str | None = None
    down: bool = False
    delay: float = 0.0
    hits: int = 0
    discovery_hits: int = 0
    certs_hits: int = 0
    clients: dict[str, str] = field(default_factory=dict)
    token_audience: str = "nats"
    token_lifetime: int = 300
    token_hits: int = 0
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_raw: bytes | None = None  # POST /token answers 200 with exactly these bytes
    token_delay: float = 0.0  # POST /token sleeps this long first
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server context
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Issuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if issuer.delay:
                    time.sleep(issuer.delay)
                if self.path == "/jwks":
                    issuer.hits += 1
                    body: dict[str, Any] = {"keys": [k.jwk() for k in issuer.keys]}
                elif self.path == "/cdn-cgi/access/certs":
                    issuer.certs_hits += 1
                    body = _access_certs(issuer.keys)
                elif self.path == "/.well-known/openid-configuration":
                    issuer.discovery_hits += 1
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks",
                            "token_endpoint": issuer.url + "/token"}
                else:
                    self.send_error(404)
                    return
                if issuer.down:
                    self.send_error(503)
                    return
                _send(self, 200, body, issuer.cache_control)

            def do_POST(self) -> None:
                if self.path != "/token":
                    self.send_error(404)
                    return
                issuer.token_hits += 1
                if issuer.token_delay:
                    time.sleep(issuer.token_delay)
                if issuer.down:
                    self.send_error(503)
                    return
                if issuer.token_raw is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(issuer.token_raw)))
                    self.end_headers()
                    self.wfile.write(issuer.token_raw)
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                status, body = _token_response(issuer, self.headers.get("Authorization"), form)
                _send(self, status, body, "no-store")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Issuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
