"""Bounded memories of tx hashes the mempool must refuse cheaply, before any signature work.

`CommittedHashes` remembers the hashes of committed txs until their timeout height passes: a
committed tx re-gossiped by a lagging peer is refused on a dictionary lookup instead of a
signature check and an application call. After its timeout height no block may include the tx
anyway, so the entry can go. When full, the entry closest to expiry goes first; forgetting early
is safe, because the application's own replay check (its record of hashes seen) still refuses the
tx, only at a higher price.

`RejectedHashes` remembers hashes of txs whose signature failed. A tx's hash covers its signature,
so a tx that failed once fails forever; remembering it stops a peer from making us verify the
same bad signature twice. First in, first out.

Pure data structures: no I/O, no clock.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict


class CommittedHashes:
    """Hashes of committed txs, each kept while its `timeout_height` is still ahead."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._timeouts: dict[bytes, int] = {}
        # Min-heap on timeout height; may hold stale pairs (hash already removed), skipped on pop.
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._timeouts)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._timeouts

    def add(self, tx_hash: bytes, timeout_height: int) -> None:
        if self._capacity == 0 or tx_hash in self._timeouts:
            return
        self._timeouts[tx_hash] = timeout_height
        heapq.heappush(self._heap, (timeout_height, tx_hash))
        while len(self._timeouts) > self._capacity:
            self._pop_earliest()

    def expire(self, height: int) -> None:
        """Forget every hash whose timeout height is <= `height`: no block can carry it now."""
        while self._heap and self._heap[0][0] <= height:
            self._pop_earliest()

    def _pop_earliest(self) -> None:
        timeout, tx_hash = heapq.heappop(self._heap)
        if self._timeouts.get(tx_hash) == timeout:
            del self._timeouts[tx_hash]


class RejectedHashes:
    """Hashes of txs that can never become valid (bad signature), first in first out."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._reasons: OrderedDict[bytes, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._reasons)

    def get(self, tx_hash: bytes) -> str | None:
        """Why the tx was rejected, or None if it is not remembered."""
        return self._reasons.get(tx_hash)

    def add(self, tx_hash: bytes, reason: str) -> None:
        if self._capacity == 0:
            return
        self._reasons[tx_hash] = reason
        while len(self._reasons) > self._capacity:
            self._reasons.popitem(last=False)
