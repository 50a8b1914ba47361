"""The best ratio any responder that does the issue's mandatory checks could reach here.

authsvc must verify two ed25519 signatures per connect that the minimal responder skips:
the server's signature on the request and the client's nkey proof over the nonce (for
``authsvc-oidc``: the request signature and an RS256 token signature). Those checks alone
cost CPU on every connect, whatever the code around them; adding exactly that cost to the
minimal responder's total CPU per connect gives an upper bound on the conn/s ratio of a
CPU-bound host. The signatures are checked here with the same libraries authsvc uses
(libsodium through nacl for ed25519, OpenSSL through ``cryptography`` for RS256), in this
process, right after the scenarios ran, so the bound is measured on the same host and in
the same command as the ratio it bounds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from authsvc.protocol.nkeys import KeyPair, Prefix, verify

# A callout request JWT is ~1 KB; the benchmark's OIDC tokens are ~620 bytes.
_REQUEST_BYTES = 1024
_TOKEN_BYTES = 620


@dataclass(frozen=True)
class CheckCosts:
    """CPU µs per signature check on this host, median of several batches."""

    ed25519_us: float
    rs256_us: float

    def mandatory_us(self, scenario: str) -> float:
        """The checks one connect of *scenario* cannot skip (request + credential)."""
        credential = self.rs256_us if scenario == "authsvc-oidc" else self.ed25519_us
        return self.ed25519_us + credential


def _cpu_us_per_call(call: Callable[[], object], count: int, batches: int = 5) -> float:
    samples = []
    for _ in range(batches):
        started = time.process_time()
        for _ in range(count):
            call()
        samples.append((time.process_time() - started) / count * 1e6)
    samples.sort()
    return samples[len(samples) // 2]


def measure(count: int = 400) -> CheckCosts:
    """Time ed25519 (request, nkey proof) and RS256-2048 verification as authsvc runs them."""
    server = KeyPair.create(Prefix.SERVER)
    request = os.urandom(_REQUEST_BYTES)
    signature = server.sign(request)
    public = server.public_key
    if not verify(public, request, signature):  # a failing check would time the wrong path
        raise RuntimeError("ed25519 self-check failed")
    ed25519 = _cpu_us_per_call(lambda: verify(public, request, signature), count)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = os.urandom(_TOKEN_BYTES)
    rsa_signature = rsa_key.sign(token, padding.PKCS1v15(), hashes.SHA256())
    rsa_public = rsa_key.public_key()
    rs256 = _cpu_us_per_call(
        lambda: rsa_public.verify(rsa_signature, token, padding.PKCS1v15(), hashes.SHA256()),
        count)
    return CheckCosts(ed25519_us=ed25519, rs256_us=rs256)


def ceiling_ratio(minimal_total_us: float, mandatory_us: float) -> float:
    """minimal's total CPU per connect ÷ (the same + the mandatory checks)."""
    return minimal_total_us / (minimal_total_us + mandatory_us)


def budget_us(minimal_total_us: float, mandatory_us: float, target: float) -> float:
    """CPU µs per connect left for everything but the mandatory checks at ``target``."""
    return minimal_total_us / target - minimal_total_us - mandatory_us


def render(costs: CheckCosts, minimal_total_us: float | None,
           totals: dict[str, float], target: float) -> list[str]:
    """Report lines: the check costs, and per scenario its ceiling and remaining budget."""
    lines = [f"signature checks in this process: ed25519 verify {costs.ed25519_us:.0f} µs, "
             f"RS256-2048 verify {costs.rs256_us:.0f} µs (CPU per check)"]
    if minimal_total_us is None:
        return lines
    for name, total in totals.items():
        mandatory = costs.mandatory_us(name)
        left = budget_us(minimal_total_us, mandatory, target)
        spent = total - minimal_total_us - mandatory
        lines.append(
            f"{name} ceiling (minimal + its {mandatory:.0f} µs of signature checks): "
            f"{ceiling_ratio(minimal_total_us, mandatory):.2f}; at {target:.2f} everything "
            f"else may cost {left:.0f} µs per connect, {name} spends {spent:.0f} µs")
    return lines
