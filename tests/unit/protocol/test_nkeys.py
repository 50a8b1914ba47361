from __future__ import annotations

import pytest

from authsvc.protocol.nkeys import (
    PUBLIC_PREFIXES,
    KeyFormatError,
    KeyPair,
    Prefix,
    create_seed,
    decode_public_key,
    decode_seed,
    encode_public_key,
    encode_seed,
    is_public_key,
    parse_public_key,
    verify,
)
from tests.unit.protocol.vectors import load

SIGNING_VECTORS = load("nkey_vectors.json")["signing"]
CURVE_VECTOR = load("nkey_vectors.json")["curve"][0]

# RFC 8032 section 7.1, TEST 1 (ed25519, empty message).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


@pytest.mark.parametrize("vector", SIGNING_VECTORS, ids=lambda v: v["public"][:8])
def test_published_seed_gives_published_public_key(vector: dict[str, str]) -> None:
    kp = KeyPair.from_seed(vector["seed"])
    assert kp.public_key == vector["public"]
    assert kp.prefix is Prefix[vector["prefix"]]
    assert kp.seed == vector["seed"]
    assert decode_seed(vector["seed"])[0] is Prefix[vector["prefix"]]
    assert is_public_key(vector["public"], Prefix[vector["prefix"]])


def test_seed_accepted_as_bytes() -> None:
    vector = SIGNING_VECTORS[0]
    assert KeyPair.from_seed(vector["seed"].encode()).public_key == vector["public"]


def test_rfc8032_signature_through_an_nkey_seed() -> None:
    seed = encode_seed(Prefix.USER, RFC8032_SEED)
    kp = KeyPair.from_seed(seed)
    assert decode_public_key(kp.public_key, prefix=Prefix.USER) == RFC8032_PUBLIC
    assert kp.sign(b"") == RFC8032_SIG
    assert verify(kp.public_key, b"", RFC8032_SIG)


@pytest.mark.parametrize("prefix", sorted(PUBLIC_PREFIXES))
def test_public_key_and_seed_round_trip_for_every_type(prefix: Prefix) -> None:
    raw = bytes(range(32))
    key = encode_public_key(prefix, raw)
    assert len(key) == 56
    assert parse_public_key(key) == (prefix, raw)
    assert decode_public_key(key, prefix=prefix) == raw
    seed = encode_seed(prefix, raw)
    assert seed[0] == "S" and len(seed) == 58
    assert decode_seed(seed) == (prefix, raw)


@pytest.mark.parametrize(
    ("prefix", "letter"),
    [
        (Prefix.ACCOUNT, "A"),
        (Prefix.USER, "U"),
        (Prefix.SERVER, "N"),
        (Prefix.OPERATOR, "O"),
        (Prefix.CLUSTER, "C"),
        (Prefix.CURVE, "X"),
    ],
)
def test_prefix_letters(prefix: Prefix, letter: str) -> None:
    assert encode_public_key(prefix, bytes(32))[0] == letter
    assert create_seed(prefix)[:2] == "S" + letter


def test_wrong_prefix_is_refused() -> None:
    account = SIGNING_VECTORS[0]["public"]
    with pytest.raises(KeyFormatError):
        decode_public_key(account, prefix=Prefix.USER)
    assert not is_public_key(account, Prefix.USER)
    assert not is_public_key(account, Prefix.SERVER)


def _flip(text: str, index: int) -> str:
    replacement = "B" if text[index] != "B" else "C"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A",
        SIGNING_VECTORS[0]["public"][:-1],
        SIGNING_VECTORS[0]["public"] + "A",
        _flip(SIGNING_VECTORS[0]["public"], 10),  # checksum mismatch
        _flip(SIGNING_VECTORS[0]["public"], 55),  # checksum bytes themselves
        SIGNING_VECTORS[0]["public"].lower(),
        "1" * 56,  # not in the base32 alphabet
        "=" * 56,
        SIGNING_VECTORS[0]["seed"],  # a seed is not a public key
        encode_seed(Prefix.USER, bytes(32))[:56],
        "é" * 56,
    ],
)
def test_malformed_public_keys(bad: str) -> None:
    with pytest.raises(KeyFormatError):
        decode_public_key(bad)
    assert not is_public_key(bad, Prefix.ACCOUNT)


def test_private_and_seed_prefixes_are_not_public() -> None:
    for prefix in (Prefix.PRIVATE, Prefix.SEED):
        with pytest.raises(KeyFormatError):
            encode_public_key(prefix, bytes(32))
        with pytest.raises(KeyFormatError):
            encode_seed(prefix, bytes(32))


def test_raw_length_is_enforced() -> None:
    with pytest.raises(KeyFormatError):
        encode_public_key(Prefix.USER, bytes(31))
    with pytest.raises(KeyFormatError):
        encode_seed(Prefix.USER, bytes(33))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        SIGNING_VECTORS[0]["public"],  # a public key is not a seed
        _flip(SIGNING_VECTORS[0]["seed"], 20),
        SIGNING_VECTORS[0]["seed"][:-1],
        b"\xff" * 58,
    ],
)
def test_malformed_seeds(bad: str | bytes) -> None:
    with pytest.raises(KeyFormatError):
        decode_seed(bad)
    with pytest.raises(KeyFormatError):
        KeyPair.from_seed(bad)


def test_curve_seed_cannot_make_a_signing_key() -> None:
    with pytest.raises(KeyFormatError):
        KeyPair.from_seed(CURVE_VECTOR["seed"])
    with pytest.raises(KeyFormatError):
        KeyPair.create(Prefix.CURVE)


def test_created_keys_are_fresh_and_valid() -> None:
    a, b = KeyPair.create(Prefix.SERVER), KeyPair.create(Prefix.SERVER)
    assert a.public_key != b.public_key
    assert is_public_key(a.public_key, Prefix.SERVER)
    assert KeyPair.from_seed(a.seed).public_key == a.public_key


def test_repr_shows_public_key_only() -> None:
    vector = SIGNING_VECTORS[0]
    kp = KeyPair.from_seed(vector["seed"])
    assert repr(kp) == f"KeyPair({vector['public']})"
    assert vector["seed"] not in repr(kp) + str(kp)


class TestVerify:
    kp = KeyPair.create(Prefix.ACCOUNT)
    data = b"header.payload"

    def test_good_signature(self) -> None:
        assert verify(self.kp.public_key, self.data, self.kp.sign(self.data))

    def test_tampered_data(self) -> None:
        assert not verify(self.kp.public_key, self.data + b"x", self.kp.sign(self.data))

    def test_tampered_signature(self) -> None:
        sig = bytearray(self.kp.sign(self.data))
        sig[0] ^= 1
        assert not verify(self.kp.public_key, self.data, bytes(sig))

    def test_other_key(self) -> None:
        other = KeyPair.create(Prefix.ACCOUNT)
        assert not verify(other.public_key, self.data, self.kp.sign(self.data))

    @pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 64])
    def test_garbage_signatures(self, sig: bytes) -> None:
        assert not verify(self.kp.public_key, self.data, sig)

    @pytest.mark.parametrize(
        "key", ["", "not-a-key", CURVE_VECTOR["public"], SIGNING_VECTORS[0]["seed"]]
    )
    def test_garbage_keys_return_false(self, key: str) -> None:
        assert not verify(key, self.data, self.kp.sign(self.data))
