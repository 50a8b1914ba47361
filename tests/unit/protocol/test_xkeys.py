from __future__ import annotations

import nacl.public
import pytest

from authsvc.protocol.nkeys import (
    KeyPair,
    Prefix,
    decode_public_key,
    decode_seed,
    encode_public_key,
    encode_seed,
)
from authsvc.protocol.xkeys import XKEY_VERSION, CurveKeyPair, XKeyError
from tests.unit.protocol.vectors import load

VECTOR = load("nkey_vectors.json")["curve"][0]


def test_published_curve_vector() -> None:
    kp = CurveKeyPair.from_seed(VECTOR["seed"])
    assert kp.public_key == VECTOR["public"]
    assert kp.seed == VECTOR["seed"]
    assert CurveKeyPair.from_seed(VECTOR["seed"].encode()).public_key == VECTOR["public"]


def test_raw_seed_is_the_x25519_scalar() -> None:
    # xkeys.go uses the 32 seed bytes directly as the private key: check against libsodium.
    _, raw = decode_seed(VECTOR["seed"])
    expected = bytes(nacl.public.PrivateKey(raw).public_key)
    assert decode_public_key(VECTOR["public"], prefix=Prefix.CURVE) == expected


def test_seal_open_round_trip_both_ways() -> None:
    alice, bob = CurveKeyPair.create(), CurveKeyPair.create()
    sealed = alice.seal(b"hello xkeys", bob.public_key)
    assert bob.open(sealed, alice.public_key) == b"hello xkeys"
    assert alice.open(bob.seal(b"back", alice.public_key), bob.public_key) == b"back"


def test_wire_format_is_xkv1_nonce_box() -> None:
    alice, bob = CurveKeyPair.create(), CurveKeyPair.create()
    message = b"m" * 100
    sealed = alice.seal(message, bob.public_key)
    assert sealed[:4] == XKEY_VERSION == b"xkv1"
    assert len(sealed) == 4 + 24 + 16 + len(message)
    # Independent decryption with plain NaCl: nonce at [4:28], MAC+ciphertext after.
    _, bob_raw = decode_seed(bob.seed)
    box = nacl.public.Box(
        nacl.public.PrivateKey(bob_raw),
        nacl.public.PublicKey(decode_public_key(alice.public_key, prefix=Prefix.CURVE)),
    )
    assert box.decrypt(sealed[28:], sealed[4:28]) == message


def test_open_accepts_a_box_made_by_plain_nacl() -> None:
    server, service = CurveKeyPair.create(), CurveKeyPair.create()
    _, server_raw = decode_seed(server.seed)
    box = nacl.public.Box(
        nacl.public.PrivateKey(server_raw),
        nacl.public.PublicKey(decode_public_key(service.public_key, prefix=Prefix.CURVE)),
    )
    nonce = bytes(range(24))
    wire = b"xkv1" + bytes(box.encrypt(b"from go", nonce))
    assert service.open(wire, server.public_key) == b"from go"


def test_nonces_are_fresh() -> None:
    alice, bob = CurveKeyPair.create(), CurveKeyPair.create()
    first = alice.seal(b"same", bob.public_key)
    second = alice.seal(b"same", bob.public_key)
    assert first[4:28] != second[4:28]
    assert first != second


@pytest.fixture
def pair() -> tuple[CurveKeyPair, CurveKeyPair, bytes]:
    alice, bob = CurveKeyPair.create(), CurveKeyPair.create()
    return alice, bob, alice.seal(b"secret message", bob.public_key)


def _tampered(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: d[:4], id="tag-only"),
        pytest.param(lambda d: d[:28], id="no-box"),
        pytest.param(lambda d: d[:43], id="short-mac"),
        pytest.param(lambda d: d[:-1], id="truncated-ciphertext"),
        pytest.param(lambda d: b"xkv2" + d[4:], id="wrong-version"),
        pytest.param(lambda d: b"eyJ0" + d[4:], id="jwt-looking-tag"),
        pytest.param(lambda d: _tampered(d, 10), id="nonce-bit"),
        pytest.param(lambda d: _tampered(d, 30), id="mac-bit"),
        pytest.param(lambda d: _tampered(d, len(d) - 1), id="ciphertext-bit"),
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: b"xkv1" + bytes(200), id="zeros"),
    ],
)
def test_open_refuses_damaged_boxes(
    pair: tuple[CurveKeyPair, CurveKeyPair, bytes], mutate: object
) -> None:
    alice, bob, sealed = pair
    assert callable(mutate)
    with pytest.raises(XKeyError):
        bob.open(mutate(sealed), alice.public_key)


def test_open_with_wrong_sender_or_recipient(
    pair: tuple[CurveKeyPair, CurveKeyPair, bytes],
) -> None:
    alice, bob, sealed = pair
    mallory = CurveKeyPair.create()
    with pytest.raises(XKeyError):
        bob.open(sealed, mallory.public_key)
    with pytest.raises(XKeyError):
        mallory.open(sealed, alice.public_key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "garbage",
        KeyPair.create(Prefix.USER).public_key,  # right length, wrong type
        VECTOR["seed"],
        VECTOR["public"][:-1] + ("A" if VECTOR["public"][-1] != "A" else "B"),
        encode_public_key(Prefix.CURVE, bytes(32)),  # low-order point: no shared secret
    ],
)
def test_bad_peer_keys_raise_xkey_error(
    pair: tuple[CurveKeyPair, CurveKeyPair, bytes], key: str
) -> None:
    alice, bob, sealed = pair
    with pytest.raises(XKeyError):
        alice.seal(b"x", key)
    with pytest.raises(XKeyError):
        bob.open(sealed, key)


@pytest.mark.parametrize(
    "seed",
    [
        "",
        "SXAAXMRAEP6J",
        KeyPair.create(Prefix.ACCOUNT).seed,  # an ed25519 seed is not a curve seed
        encode_seed(Prefix.USER, bytes(32)),
        VECTOR["public"],
    ],
)
def test_from_seed_refuses_non_curve_seeds(seed: str) -> None:
    with pytest.raises(XKeyError):
        CurveKeyPair.from_seed(seed)


def test_repr_shows_public_key_only() -> None:
    kp = CurveKeyPair.from_seed(VECTOR["seed"])
    assert repr(kp) == f"CurveKeyPair({VECTOR['public']})"
    assert VECTOR["seed"] not in repr(kp)
