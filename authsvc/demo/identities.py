"""Demo-only client identities.

Their seeds are derived from public labels so that ``policies/demo.yaml`` can name their
public keys without any seed being stored anywhere. Anyone can derive them: they identify
nothing and must never appear in a production policy.
"""

from __future__ import annotations

import hashlib

from authsvc.protocol.nkeys import KeyPair, Prefix, encode_seed

DEMO_LABEL = "authsvc demo identity (public, insecure): "

ORDERS_SERVICE = "orders-service"
ANALYTICS_READER = "analytics-reader"
INTRUDER = "intruder"


def demo_keypair(name: str) -> KeyPair:
    raw = hashlib.sha256((DEMO_LABEL + name).encode()).digest()
    return KeyPair.from_seed(encode_seed(Prefix.USER, raw))
