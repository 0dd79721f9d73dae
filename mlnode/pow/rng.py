"""Seeds and streams of the PoC function (SPEC.md sections 3 and 4): BLAKE3 picks a Philox key, the
counter walks the elements. Every random tensor of the PoC function comes from here.

Two kinds of stream:
  * a **tensor stream** for values that depend on the block hash only (weights, the target):
    key and the two high counter words from BLAKE3(domain, block hash, tensor name);
    counter = (block index low, block index high, w2, w3);
  * a **nonce stream** for values that also depend on the host and the nonce (inputs, permutation
    keys): key from BLAKE3(domain, block hash, public key); counter = (block index, nonce low,
    nonce high, w2). The nonce sits in the counter, so a device needs no hashing per nonce.
Each Philox block yields four uint32 words; element j of a stream is word j % 4 of block j // 4.
"""

from __future__ import annotations

from typing import NamedTuple

import blake3
import numpy as np

from mlnode.pow.philox import philox4x32

DOMAIN = b"gonka-poc-v1/"
UNIFORM_SCALE = np.float32(2.0**-23)


class Stream(NamedTuple):
    """A Philox key (k0, k1) and the fixed counter word(s) of one stream."""

    k0: int
    k1: int
    c2: int
    c3: int


def _words(kind: bytes, *parts: bytes) -> Stream:
    digest = blake3.blake3(DOMAIN + kind + b"\x00" + b"".join(parts)).digest()
    w = np.frombuffer(digest[:16], dtype="<u4")
    return Stream(int(w[0]), int(w[1]), int(w[2]), int(w[3]))


def tensor_stream(block_hash: bytes, name: str) -> Stream:
    return _words(b"tensor", _check_hash(block_hash), name.encode("ascii"))


def input_stream(block_hash: bytes, public_key: bytes) -> Stream:
    return _words(b"input", _check_hash(block_hash), _check_key(public_key))


def permutation_stream(block_hash: bytes, public_key: bytes) -> Stream:
    return _words(b"permutation", _check_hash(block_hash), _check_key(public_key))


def _check_hash(block_hash: bytes) -> bytes:
    if len(block_hash) != 32:
        raise ValueError(f"block hash must be 32 bytes, got {len(block_hash)}")
    return block_hash


def _check_key(public_key: bytes) -> bytes:
    if len(public_key) != 33 or public_key[0] not in (2, 3):
        raise ValueError("public key must be a 33-byte compressed secp256k1 key")
    return public_key


def tensor_u32(stream: Stream, count: int) -> np.ndarray:
    """Elements 0..count-1 of a tensor stream, uint32."""
    blocks = np.arange((count + 3) // 4, dtype=np.uint64)
    out = philox4x32(blocks & np.uint64(0xFFFFFFFF), blocks >> np.uint64(32),
                     stream.c2, stream.c3, stream.k0, stream.k1)
    return np.stack(out, axis=-1).reshape(-1)[:count]


def nonce_u32(stream: Stream, nonces: np.ndarray, count: int) -> np.ndarray:
    """Elements 0..count-1 of a nonce stream for each nonce: uint32 [len(nonces), count]."""
    nonces = np.asarray(nonces, dtype=np.uint64).reshape(-1, 1)
    blocks = np.arange((count + 3) // 4, dtype=np.uint64).reshape(1, -1)
    out = philox4x32(blocks, nonces & np.uint64(0xFFFFFFFF), nonces >> np.uint64(32),
                     stream.c2, stream.k0, stream.k1)
    return np.stack(out, axis=-1).reshape(len(nonces), -1)[:, :count]


def uniform(words: np.ndarray) -> np.ndarray:
    """uint32 -> float32 in (-1, 1): (2 * (x >> 9) + 1 - 2**23) * 2**-23, exact in float32."""
    k = (words >> np.uint32(9)).astype(np.int32) * 2 + (1 - 2**23)
    return k.astype(np.float32) * UNIFORM_SCALE
