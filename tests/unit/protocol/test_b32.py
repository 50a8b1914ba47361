"""The table-driven base32 encoder equals the standard library's on every length."""

from __future__ import annotations

import base64
import random

import pytest

from authsvc.protocol.nkeys import b32encode_nopad


@pytest.mark.parametrize("length", range(0, 70))
def test_matches_stdlib(length: int) -> None:
    rng = random.Random(length)
    for _ in range(30):
        raw = bytes(rng.randrange(256) for _ in range(length))
        assert b32encode_nopad(raw) == base64.b32encode(raw).decode().rstrip("=")
