"""Which nonces an ML node (and each device group inside it) tries, without overlap.

A participant's ML nodes and their device groups interleave over 0, 1, 2, ...: the k-th nonce of
group `group_id` of node `node_id` is

    node_id + group_id * node_count + k * (n_groups * node_count)

so with the same `n_groups` on every node the streams partition the nonces exactly (reference
ML node `NonceIterator`). Different participants may reuse nonces: their inputs depend on the
public key. Pure: no I/O, no state beyond a stream's position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chain.types.poc import MAX_NONCE


class NonceRangeError(ValueError):
    """A stream would pass the largest nonce (2**63 - 1) or its indices are out of range."""


@dataclass(frozen=True)
class NonceLane:
    """The position of one device group in its participant's nonce space."""

    node_id: int
    node_count: int
    group_id: int = 0
    n_groups: int = 1

    def __post_init__(self) -> None:
        if self.node_count < 1 or not 0 <= self.node_id < self.node_count:
            raise NonceRangeError(
                f"node_id must be in [0, node_count), got {self.node_id} of {self.node_count}")
        if self.n_groups < 1 or not 0 <= self.group_id < self.n_groups:
            raise NonceRangeError(
                f"group_id must be in [0, n_groups), got {self.group_id} of {self.n_groups}")

    @property
    def offset(self) -> int:
        return self.node_id + self.group_id * self.node_count

    @property
    def stride(self) -> int:
        return self.n_groups * self.node_count

    def nonce(self, k: int) -> int:
        """The k-th nonce of this lane."""
        if k < 0:
            raise NonceRangeError(f"k must be >= 0, got {k}")
        return self.offset + k * self.stride

    def batch(self, start_k: int, count: int) -> np.ndarray:
        """Nonces k = start_k .. start_k + count - 1 of this lane, uint64."""
        if count < 0:
            raise NonceRangeError(f"count must be >= 0, got {count}")
        if count and self.nonce(start_k + count - 1) > MAX_NONCE:
            raise NonceRangeError(f"nonce index {start_k + count - 1} passes the largest nonce")
        ks = np.arange(start_k, start_k + count, dtype=np.uint64)
        return np.uint64(self.offset) + ks * np.uint64(self.stride)


class NonceStream:
    """Consecutive batches of one lane: `take(n)` returns the next n nonces."""

    def __init__(self, lane: NonceLane, start_k: int = 0) -> None:
        self.lane = lane
        self.next_k = start_k

    def take(self, count: int) -> np.ndarray:
        nonces = self.lane.batch(self.next_k, count)
        self.next_k += count
        return nonces
