"""BLAKE3 and Merkle trees: both backends, checked against the `blake3` package and MERKLE.md."""

from __future__ import annotations

import random

import blake3
import msgspec
import pytest

import native
from native.merkle_spec import EMPTY_ROOT, LEAF_KEY, NODE_KEY, Proof
from tests.native.conftest import BACKENDS

LENGTHS = sorted(
    {0, 1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 2047, 2048, 2049,
     3072, 3073, 4096, 4097, 5000, 8192, 8193, 16384 + 1, 31 * 1024, 100_000, (1 << 20) + 7,
     3 * (1 << 20) + 1}
)


def _data(n: int) -> bytes:
    # The BLAKE3 test-vector input pattern: byte i is i mod 251.
    return bytes(i % 251 for i in range(n))


@pytest.mark.parametrize("n", LENGTHS)
def test_blake3_matches_the_blake3_package(n):
    data = _data(n)
    key = bytes(range(1, 33))
    assert native._native.blake3(data) == blake3.blake3(data).digest()
    assert native._native.blake3(data, key) == blake3.blake3(data, key=key).digest()
    assert native.fallback.blake3(data, key) == blake3.blake3(data, key=key).digest()


def test_blake3_random_inputs_match(backend):
    rng = random.Random(3)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 9000))
        key = rng.randbytes(32)
        assert backend.blake3(data) == blake3.blake3(data).digest()
        assert backend.blake3(data, key=key) == blake3.blake3(data, key=key).digest()


def test_blake3_rejects_a_short_key(backend):
    with pytest.raises(ValueError, match="32 bytes"):
        backend.blake3(b"x", key=b"short")


def test_domain_keys_are_the_documented_derivations():
    assert LEAF_KEY == blake3.blake3(b"gonka/merkle/v1/leaf").digest()
    assert NODE_KEY == blake3.blake3(b"gonka/merkle/v1/node").digest()
    assert EMPTY_ROOT == blake3.blake3(b"", key=NODE_KEY).digest()


def _leaf(x: bytes) -> bytes:
    return blake3.blake3(x, key=LEAF_KEY).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return blake3.blake3(a + b, key=NODE_KEY).digest()


def test_tree_shape_is_the_one_merkle_md_describes(backend):
    # Built by hand from MERKLE.md with the blake3 package alone.
    a, b, c, d, e = (bytes([i]) * 32 for i in range(5))
    assert backend.merkle_root([]) == EMPTY_ROOT
    assert backend.merkle_root([a]) == _leaf(a)
    assert backend.merkle_root([a, b]) == _node(_leaf(a), _leaf(b))
    # Odd levels promote their last node unchanged (no duplication, so [a,b,c] != [a,b,c,c]).
    assert backend.merkle_root([a, b, c]) == _node(_node(_leaf(a), _leaf(b)), _leaf(c))
    assert backend.merkle_root([a, b, c]) != backend.merkle_root([a, b, c, c])
    n01, n23 = _node(_leaf(a), _leaf(b)), _node(_leaf(c), _leaf(d))
    assert backend.merkle_root([a, b, c, d, e]) == _node(_node(n01, n23), _leaf(e))
    # A leaf equal to an inner node's hash does not collide with it (domain separation).
    assert backend.merkle_root([n01]) != n01


def test_golden_root():
    # Pinned so that any change of the tree format is seen; recompute only with a format version.
    leaves = [f"leaf {i}".encode() for i in range(7)]
    golden = "ad211efb1a8f5c500c25aa69f2109c119039883f3e7c43cfcbfe9cc7b9be2719"
    for b in BACKENDS:
        assert b.merkle_root(leaves).hex() == golden


COUNTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33, 100, 2047, 2048, 2049, 4097, 5003]


@pytest.mark.parametrize("count", COUNTS)
def test_roots_and_proofs_agree_between_backends(count):
    rng = random.Random(count)
    leaves = [rng.randbytes(rng.choice([0, 1, 32, 32, 32, 64, 65, 1500])) for _ in range(count)]
    root = native._native.merkle_root(leaves)
    assert native.fallback.merkle_root(leaves) == root
    indices = range(count) if count <= 40 else sorted({0, 1, count // 2, count - 2, count - 1})
    for i in indices:
        proof = native._native.merkle_proof(leaves, i)
        assert native.fallback.merkle_proof(leaves, i) == proof
        assert native.verify_proof(root, leaves[i], i, count, proof)


def test_large_tree_of_32_byte_leaves_agrees():
    rng = random.Random(5)
    leaves = [rng.randbytes(32) for _ in range(200_001)]
    assert native._native.merkle_root(leaves) == native.fallback.merkle_root(leaves)


def _proof_case():
    leaves = [bytes([i]) * 32 for i in range(11)]
    root = native.merkle_root(leaves)
    return leaves, root, native.merkle_proof(leaves, 6)


def test_proof_rejects_every_tampering():
    leaves, root, proof = _proof_case()
    assert native.verify_proof(root, leaves[6], 6, 11, proof)
    bad_sibling = (bytes(32),) + proof.siblings[1:]
    rejected = [
        (root, leaves[5], 6, 11, proof),  # another leaf
        (root, leaves[6], 5, 11, proof),  # another position
        (root, leaves[6], 6, 12, proof),  # another tree size
        (bytes(32), leaves[6], 6, 11, proof),  # another root
        (root, leaves[6], 6, 11, Proof(index=6, count=11, siblings=bad_sibling)),
        (root, leaves[6], 6, 11, Proof(index=6, count=11, siblings=proof.siblings[:-1])),
        (root, leaves[6], 6, 11, Proof(index=6, count=11, siblings=proof.siblings + (root,))),
        (root, leaves[6], 11, 11, Proof(index=11, count=11, siblings=proof.siblings)),
        (root, leaves[6], 6, 11, native.merkle_proof(leaves, 7)),
        (root[:31], leaves[6], 6, 11, proof),
    ]
    for args in rejected:
        assert native.verify_proof(*args) is False, args[2:4]


def test_last_odd_leaf_has_a_shorter_proof():
    leaves = [bytes([i]) for i in range(5)]
    proof = native.merkle_proof(leaves, 4)
    # Promoted at the two lowest levels, it meets one sibling: the root of the first four.
    assert len(proof.siblings) == 1
    assert native.verify_proof(native.merkle_root(leaves), leaves[4], 4, 5, proof)


def test_proof_index_out_of_range(backend):
    with pytest.raises(IndexError):
        backend.merkle_proof([b"a", b"b"], 2)
    with pytest.raises(IndexError):
        backend.merkle_proof([], 0)
    with pytest.raises(IndexError):
        backend.merkle_proof([b"a"], -1)


def test_proof_round_trips_as_wire_data_and_bad_wire_proofs_are_refused():
    leaves, root, proof = _proof_case()
    again = msgspec.json.decode(msgspec.json.encode(proof), type=Proof)
    assert again == proof and native.verify_proof(root, leaves[6], 6, 11, again)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"index":0,"count":1,"siblings":["AAAA"]}', type=Proof)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"index":-1,"count":1,"siblings":[]}', type=Proof)


def test_node_hash_needs_two_32_byte_children(backend):
    with pytest.raises(ValueError):
        backend.node_hash(b"a" * 31, b"b" * 32)
