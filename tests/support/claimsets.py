"""Realistic claim sets of real IdPs (``tests/data/identity/tokens/*.json``), minted afresh.

Each file holds the ``header`` and ``claims`` of a token shaped as its IdP documents it.
``claim_set(name, now)`` moves its times to ``now`` keeping their offsets (GitHub's
``nbf = iat - 600`` stays); ``mint_claim_set`` signs it with a test key, keeping the
captured header parameters (``typ``, ``x5t``) but using the key's own ``kid``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.idp import SigningKey, mint

TOKENS = Path(__file__).resolve().parents[1] / "data" / "identity" / "tokens"
_TIMES = ("iat", "nbf", "exp", "auth_time")


def claim_set(name: str, now: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of ``name``, issued at ``now`` (Unix seconds)."""
    data = json.loads((TOKENS / f"{name}.json").read_text())
    header = {k: v for k, v in data["header"].items() if k not in ("alg", "kid")}
    claims = dict(data["claims"])
    shift = now - claims["iat"]
    for field in _TIMES:
        if field in claims:
            claims[field] += shift
    return header, claims


def mint_claim_set(key: SigningKey, name: str, now: int, **changes: Any) -> str:
    """The claim set signed by ``key``; ``changes`` replace claims (None removes one)."""
    header, claims = claim_set(name, now)
    for field, value in changes.items():
        if value is None:
            claims.pop(field, None)
        else:
            claims[field] = value
    return mint(key, claims, header)
