"""Cost of verifying an OIDC token with cached keys: ``python -m bench.identity_verify``.

Measures ``OidcVerifier.verify`` end to end (parse, issuer routing, kid lookup, signature,
claim rules, identity) for RS256-2048 and ES256 with keys already in the cache, which is
what every connect pays once an issuer's JWKS is loaded. Target: <= 60 us each.
Also prints the bare signature check, to show how much of it is the cryptography.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from authsvc.domain import ClientInfo, ConnectOptions, ConnectRequest, Identity, Secret, ServerInfo
from authsvc.identity import jws
from authsvc.identity.claims import ClaimRules, ClaimType
from authsvc.identity.jwk import import_key_set
from authsvc.identity.jwks import StaticKeys
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from tests.support.idp import SigningKey, mint

ISS = "https://idp.example.com"
TARGET_US = 60.0


def _request(token: str, now: datetime) -> ConnectRequest:
    return ConnectRequest(server=ServerInfo(id="N"), user_nkey="U", client=ClientInfo(),
                          connect=ConnectOptions(auth_token=Secret(token)), request_id="r",
                          issued_at=now, expires_at=now)


async def _per_call_us(verifier: OidcVerifier, request: ConnectRequest, now: datetime,
                       rounds: int, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(rounds):
            result = await verifier.verify(request, now=now)
        samples.append((time.perf_counter() - started) / rounds * 1e6)
        assert isinstance(result, Identity), result
    return samples


def _signature_us(token: str, key: SigningKey, rounds: int) -> float:
    parsed = jws.parse(token, max_bytes=8192)
    assert isinstance(parsed, jws.ParsedToken)
    public = key.private.public_key()
    started = time.perf_counter()
    for _ in range(rounds):
        jws.signature_valid(parsed, public)  # type: ignore[arg-type]
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC)
    t = int(now.timestamp())
    claims = {"iss": ISS, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "nats",
              "iat": t, "exp": t + 300, "groups": ["ci", "deployers"], "jti": "x"}
    failed = False
    for key in (SigningKey.rsa("rsa-2048"), SigningKey.ec("p-256")):
        verifier = OidcVerifier([OidcIssuer(
            rules=ClaimRules(issuer=ISS, audiences=frozenset({"nats"})),
            algorithms=frozenset({key.alg}), keys=StaticKeys(import_key_set([key.jwk()])),
            claims={"groups": ClaimType.STRINGS})])
        token = mint(key, claims)
        samples = asyncio.run(_per_call_us(verifier, _request(token, now), now, args.rounds,
                                           args.repeat))
        best, median = min(samples), statistics.median(samples)
        sig = _signature_us(token, key, args.rounds)
        verdict = "ok" if median <= TARGET_US else "OVER TARGET"
        failed |= median > TARGET_US
        print(f"{key.alg:6} verify: median {median:6.1f} us  best {best:6.1f} us  "
              f"(signature alone {sig:5.1f} us, token {len(token)} B)  target "
              f"{TARGET_US:.0f} us: {verdict}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
