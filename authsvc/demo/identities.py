"""Demo-only client identities.

Their seeds are derived from public labels so that ``policies/demo.yaml`` can name their
public keys without any seed being stored anywhere. Anyone can derive them: they identify
nothing and must never appear in a production policy: lint flags an allow rule naming one
(``demo_identity``) in any policy but the shipped demo policy alone.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from authsvc.protocol.nkeys import KeyPair, Prefix, encode_seed

DEMO_LABEL = "authsvc demo identity (public, insecure): "

ORDERS_SERVICE = "orders-service"
ANALYTICS_READER = "analytics-reader"
INTRUDER = "intruder"
NAMES = (ORDERS_SERVICE, ANALYTICS_READER, INTRUDER)
# The policy `authsvc demo` serves: the one policy allowed to name these identities.
SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def demo_keypair(name: str) -> KeyPair:
    raw = hashlib.sha256((DEMO_LABEL + name).encode()).digest()
    return KeyPair.from_seed(encode_seed(Prefix.USER, raw))


@functools.cache
def public_keys() -> Mapping[str, str]:
    """Each demo identity's public key, mapped to its name."""
    return MappingProxyType({demo_keypair(name).public_key: name for name in NAMES})


def keys_to_flag(sources: Sequence[str]) -> Mapping[str, str]:
    """The demo keys lint should flag in a policy loaded from ``sources``: all of them,
    unless the policy is the shipped demo policy and nothing else (a copy of it elsewhere,
    or the demo policy combined with other files, is flagged)."""
    shipped = [Path(source).resolve() for source in sources] == [SHIPPED_POLICY]
    return MappingProxyType({}) if shipped else public_keys()
