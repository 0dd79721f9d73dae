"""The Merkle tree both backends build: domain keys, the empty root, the proof type and its check.

The tree shape is specified in `native/MERKLE.md`. This module holds what the compiled and the
fallback backends share, so that there is one definition of a proof and one way to check it.
It must not depend on which backend is loaded: `verify_proof` takes the two hash functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec

# Keys of the two keyed-BLAKE3 domains: BLAKE3-256 of the ASCII strings "gonka/merkle/v1/leaf" and
# "gonka/merkle/v1/node" (the tests recompute them). Keying the node hash rather than prefixing a
# byte keeps an inner node at exactly one 64-byte block, i.e. one compression.
LEAF_KEY = bytes.fromhex("9e4c0a404b53f4a98aae5ca2cb56592bcc97e013918562ef0dd4cb142ca1f67a")
NODE_KEY = bytes.fromhex("6e4758f3afc8bbd5e49c62f122226c758373605e5a52bd2a569539bfe256a4ca")

# Root of the tree with no leaves: the node-keyed BLAKE3 of the empty string. An inner node always
# hashes exactly 64 bytes, so this can never equal a real node.
EMPTY_ROOT = bytes.fromhex("de36a771d7492039398b29be70a1abf560aba74a801ae0572e032c1b7ab5904f")

Hash32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]

# A tree over at most 2**63 leaves has at most 63 levels above the leaves.
MAX_PROOF_DEPTH = 63


class Proof(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Inclusion proof of the leaf at `index` in a tree of `count` leaves.

    `siblings` are the hashes met on the way from the leaf to the root, lowest level first; a level
    where the path node is the promoted last node of an odd level contributes none.
    """

    index: Annotated[int, msgspec.Meta(ge=0)]
    count: Annotated[int, msgspec.Meta(ge=1)]
    siblings: Annotated[tuple[Hash32, ...], msgspec.Meta(max_length=MAX_PROOF_DEPTH)]


def verify_proof_with(
    leaf_hash: Callable[[bytes], bytes],
    node_hash: Callable[[bytes, bytes], bytes],
    root: bytes,
    leaf: bytes,
    index: int,
    count: int,
    proof: Proof,
) -> bool:
    """True iff `proof` shows `leaf` at position `index` of a `count`-leaf tree with `root`.

    `index` and `count` are the verifier's own expectation; a proof made for another position
    or tree size is rejected rather than trusted.
    """
    if not isinstance(proof, Proof) or proof.index != index or proof.count != count:
        return False
    if not 0 <= index < count or len(root) != 32:
        return False
    h = leaf_hash(leaf)
    siblings = iter(proof.siblings)
    i, n = index, count
    try:
        while n > 1:
            if i & 1:
                h = node_hash(next(siblings), h)
            elif i + 1 < n:
                h = node_hash(h, next(siblings))
            i >>= 1
            n = (n + 1) >> 1
    except (StopIteration, ValueError):
        return False
    if next(siblings, None) is not None:
        return False
    return h == root
