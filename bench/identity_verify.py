"""Cost of verifying an OIDC token with cached keys: ``python -m bench.identity_verify``.

For RS256 (RSA-2048) and ES256 (P-256), three figures in microseconds per token, each
against the 60 us target of the identity issue:

* ``raw crypto``: ``cryptography``'s bare signature check on the token's signing input
  (hash and padding objects built beforehand, the ECDSA signature already in DER): the
  floor no verifier on this CPU can go under;
* ``uncached``: ``OidcVerifier.verify`` end to end on a token it has never seen (parse,
  issuer routing, kid lookup, signature, claim rules, identity, and storing the result in
  the verified-token cache), with the issuer's keys already loaded, which is what every
  connect with a new token pays;
* ``cached``: the same token again (a reconnect), served from the verified-token cache
  after its time claims and its key are checked again;
* ``no cache``: new tokens with ``token_cache_size: 0``, i.e. the verification without
  the cache's bookkeeping (digest, lookup, insert), to show what a miss costs.

The three are measured interleaved, ``--repeat`` times, ``--rounds`` calls each, as CPU time
of this thread (so time spent descheduled on a busy host does not count; contention for
caches and shared cores still does); the table shows the median (and best) over the
repeats. Exit status 1 if a verification figure (uncached or cached) is over the target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authsvc.domain import ClientInfo, ConnectOptions, ConnectRequest, Identity, Secret, ServerInfo
from authsvc.identity.claims import ClaimRules, ClaimType
from authsvc.identity.jwk import import_key_set
from authsvc.identity.jwks import StaticKeys
from authsvc.identity.jws import b64url_decode
from authsvc.identity.oidc import OidcIssuer, OidcVerifier
from authsvc.identity.token_cache import DEFAULT_MAX_ENTRIES
from tests.support.idp import SigningKey, mint

ISS = "https://idp.example.com"
TARGET_US = 60.0


def _request(token: str, now: datetime) -> ConnectRequest:
    return ConnectRequest(server=ServerInfo(id="N"), user_nkey="U", client=ClientInfo(),
                          connect=ConnectOptions(auth_token=Secret(token)), request_id="r",
                          issued_at=now, expires_at=now)


def _raw_check(key: SigningKey, token: str) -> Callable[[], None]:
    """The bare ``cryptography`` verify of the token's signature, ready to call."""
    header, payload, signature = token.split(".")
    data, sig = f"{header}.{payload}".encode(), b64url_decode(signature)
    assert sig is not None
    public = key.private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        pad, digest = padding.PKCS1v15(), hashes.SHA256()
        return lambda: public.verify(sig, data, pad, digest)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    ecdsa = ec.ECDSA(hashes.SHA256())
    return lambda: public.verify(der, data, ecdsa)


def _raw_us(check: Callable[[], None], rounds: int) -> float:
    started = time.thread_time()
    for _ in range(rounds):
        check()
    return (time.thread_time() - started) / rounds * 1e6


async def _verify_us(verifier: OidcVerifier, requests: list[ConnectRequest],
                     now: datetime) -> float:
    result = None
    started = time.thread_time()
    for request in requests:
        result = await verifier.verify(request, now=now)
    elapsed = time.thread_time() - started
    assert isinstance(result, Identity), result
    return elapsed / len(requests) * 1e6


def _verifier(key: SigningKey, cache_size: int = DEFAULT_MAX_ENTRIES) -> OidcVerifier:
    return OidcVerifier([OidcIssuer(
        rules=ClaimRules(issuer=ISS, audiences=frozenset({"nats"})),
        algorithms=frozenset({key.alg}), keys=StaticKeys(import_key_set([key.jwk()])),
        claims={"groups": ClaimType.STRINGS})], cache_size=cache_size)


def _tokens(key: SigningKey, now: datetime, count: int) -> list[str]:
    t = int(now.timestamp())
    return [mint(key, {"iss": ISS, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "nats",
                       "iat": t, "exp": t + 600, "groups": ["ci", "deployers"],
                       "jti": f"{i:016x}"}) for i in range(count)]


def _measure(key: SigningKey, rounds: int, repeat: int) -> dict[str, list[float]]:
    now = datetime.now(UTC)
    tokens = _tokens(key, now, rounds)
    requests = [_request(token, now) for token in tokens]
    raw = _raw_check(key, tokens[0])
    samples: dict[str, list[float]] = {"raw crypto": [], "uncached": [], "cached": [],
                                       "no cache": []}
    for _ in range(repeat):
        samples["raw crypto"].append(_raw_us(raw, rounds))
        verifier = _verifier(key)  # a fresh cache: every token below is new to it
        samples["uncached"].append(asyncio.run(_verify_us(verifier, requests, now)))
        samples["cached"].append(asyncio.run(_verify_us(verifier, requests[:1] * rounds, now)))
        samples["no cache"].append(asyncio.run(_verify_us(_verifier(key, 0), requests, now)))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    failed = False
    print(f"{'alg':16} {'figure':11} {'median us':>9} {'best us':>8} {'/ target':>9}")
    for name, key in (("RS256 (RSA-2048)", SigningKey.rsa("rsa-2048")),
                      ("ES256 (P-256)", SigningKey.ec("p-256"))):
        for figure, values in _measure(key, args.rounds, args.repeat).items():
            median, best = statistics.median(values), min(values)
            over = median > TARGET_US
            verdict = "over target" if over else "ok"
            if figure in ("uncached", "cached"):
                failed |= over
            print(f"{name:16} {figure:11} {median:9.1f} {best:8.1f} "
                  f"{median / TARGET_US:8.2f}x  {verdict}")
    print(f"target: {TARGET_US:.0f} us per verification with cached keys; "
          "ratio = median / target")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
