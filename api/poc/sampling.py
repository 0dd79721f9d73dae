"""Which positions of a host's committed nonce list a validator checks, and its verdict.

`sample_positions` is specified byte for byte so that any implementation picks the same
positions (and anyone can audit a validator's choice):

    seed   = BLAKE3(b"gonka/poc-sample/v1\\0"
                    || u32be(len(validator_pubkey)) || validator_pubkey
                    || u32be(len(block_hash)) || block_hash
                    || u32be(len(participant_utf8)) || participant_utf8)
    block_j = BLAKE3_keyed(key=seed, u64be(j))          j = 0, 1, 2, ...
    draws   = the u64be words of block_0, block_1, ... in order (four per block)
    uniform(m): take draws until x < 2^64 - (2^64 mod m); answer x mod m    (no modulo bias)

    if count <= k: every position 0..count-1
    else: partial Fisher-Yates over the virtual array a[i] = i:
          for i in 0..k-1: j = i + uniform(count - i); swap a[i], a[j]; pick a[i]
    the picked positions, sorted ascending

The block hash must be of a block sealed after the host's commitment could no longer change
(the end of the commit window or later), never the PoC start block's: a host that knew the
positions before committing could make only those honest.

`verdict` is the one-sided binomial test of `chain.types.poc_fraud` (the ML node's too).
Pure: no I/O, no clock, no `random`.
"""

from __future__ import annotations

import struct

from blake3 import blake3

from chain.types.poc_fraud import fraud_test

SAMPLE_TAG = b"gonka/poc-sample/v1\x00"
_TWO64 = 1 << 64


def _field(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def sample_seed(validator_pubkey: bytes, block_hash: bytes, participant: str) -> bytes:
    return blake3(SAMPLE_TAG + _field(validator_pubkey) + _field(block_hash)
                  + _field(participant.encode())).digest()


class _Draws:
    """The counter-mode BLAKE3 stream of u64 draws under one seed."""

    def __init__(self, seed: bytes) -> None:
        self._seed, self._block, self._words = seed, 0, iter(())

    def u64(self) -> int:
        word = next(self._words, None)
        if word is None:
            block = blake3(struct.pack(">Q", self._block), key=self._seed).digest()
            self._block += 1
            self._words = iter(struct.unpack(">4Q", block))
            word = next(self._words)
        return word

    def uniform(self, m: int) -> int:
        """Uniform in [0, m) for 1 <= m <= 2^64, by rejection."""
        limit = _TWO64 - _TWO64 % m
        while True:
            x = self.u64()
            if x < limit:
                return x % m


def sample_positions(validator_pubkey: bytes, block_hash: bytes, participant: str,
                     count: int, k: int) -> list[int]:
    """`k` distinct positions in [0, count), sorted (all of them when count <= k)."""
    if count < 0 or k < 0:
        raise ValueError(f"count {count} and k {k} must be >= 0")
    if count > _TWO64:
        raise ValueError(f"count {count} exceeds 2^64")
    if count <= k:
        return list(range(count))
    draws = _Draws(sample_seed(validator_pubkey, block_hash, participant))
    moved: dict[int, int] = {}  # the virtual array's entries that differ from their index
    picked = []
    for i in range(k):
        j = i + draws.uniform(count - i)
        picked.append(moved.get(j, j))
        moved[j] = moved.get(i, i)  # a[i] is never read again, so only a[j] needs writing
    return sorted(picked)


def verdict(checked: int, failed: int, mismatch_rate: float, fraud_threshold: float) -> bool:
    """True (fraud) iff `failed` of `checked` sampled nonces is too many for an honest host."""
    return fraud_test(checked, failed, mismatch_rate, fraud_threshold).fraud
