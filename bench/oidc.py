"""The ``authsvc-oidc`` scenario's identity provider: a JWKS on loopback and minted tokens.

An RS256-2048 key (the algorithm GitHub Actions, Kubernetes, Entra ID and Okta sign with) is
generated per run; its public JWK is written to ``<workdir>/jwks/jwks.json`` and served by
``python -m http.server`` on 127.0.0.1, which authsvc fetches once (``jwks_uri``) and then
serves from its cache. ``mint_tokens`` signs a pool of distinct tokens (own ``sub`` and
``jti`` each) that the load generator hands out one per connect, so every connect is a full
verification: parse, issuer routing, kid lookup, RSA signature, claim rules.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://idp.bench.authsvc.invalid"  # never fetched: keys come from jwks_uri
AUDIENCE = "nats://bench"
SUBJECT_GLOB = "bench-*"
POOL = 512


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class BenchIssuer:
    """The signing key and where its JWKS file lies."""

    key: rsa.RSAPrivateKey
    kid: str
    jwks_dir: Path

    @classmethod
    def create(cls, workdir: Path) -> BenchIssuer:
        """Generate a key and write its JWKS under *workdir*/jwks."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = uuid.uuid4().hex[:16]
        numbers = key.public_key().public_numbers()
        jwks = {"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                          "n": _b64(numbers.n), "e": _b64(numbers.e)}]}
        jwks_dir = workdir / "jwks"
        jwks_dir.mkdir(parents=True, exist_ok=True)
        (jwks_dir / "jwks.json").write_text(json.dumps(jwks))
        return cls(key=key, kid=kid, jwks_dir=jwks_dir)

    def mint_tokens(self, count: int = POOL, lifetime_s: int = 3600) -> list[str]:
        """*count* distinct tokens for subjects ``bench-0`` ... valid for *lifetime_s*."""
        now = int(time.time())
        return [jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": f"bench-{i}",
                            "iat": now, "exp": now + lifetime_s, "jti": uuid.uuid4().hex},
                           self.key, algorithm="RS256", headers={"kid": self.kid})
                for i in range(count)]


def issuer_settings(jwks_uri: str) -> dict[str, object]:
    """The ``identity`` settings section that trusts this issuer.

    The verified-token cache is off: the scenario measures a full verification on every
    connect (with the cache, the pool's 512 tokens would be verified once each).
    """
    return {"oidc": {"token_cache_size": 0, "issuers": [{
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": jwks_uri,
        "algorithms": ["RS256"], "allow_http": True}]}}  # loopback JWKS only
