"""Key-value views of chain state: the read protocol, in-memory write overlays, and the write set.

State is one ordered map from byte keys to byte values. `KVReader` is what every module reads
through; `Overlay` buffers writes on top of another reader (the committed SQLite store, or another
overlay) so that a block, a tx inside it, or the mempool's check state can be tried and then kept
(`write_into`) or dropped (forget the overlay). The block's overlay, once finalized, *is* the write
set that feeds the app hash (`write_set`, `write_set_root`, `next_app_hash`; the exact leaf
encoding is in chain/app/PROTOCOL.md).

This module must never touch disk, the clock or the network, and must never depend on dict
iteration order for anything that is hashed: the write set is sorted by key.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from typing import Protocol

import native
from chain.crypto.hashing import blake3_256

# The app hash before init_chain: the first link of the chain is BLAKE3(ZERO_HASH || genesis root).
ZERO_HASH = bytes(32)
_DELETED_TAG = b"\x00"
_SET_TAG = b"\x01"


class KVReader(Protocol):
    """Read access to one version of state."""

    def get(self, key: bytes) -> bytes | None:
        """The value at `key`, or None when absent."""
        ...

    def scan(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        """Every (key, value) with start <= key < end (no upper bound when `end` is None),
        sorted by key (bytewise)."""
        ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix` (None: no such key)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def scan_prefix(reader: KVReader, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) whose key starts with `prefix`, sorted by key."""
    return reader.scan(prefix, prefix_end(prefix))


class Overlay:
    """Buffered writes over `base`: reads see the writes first, then `base`.

    A deletion is buffered as None, so it hides the base's value. Nothing reaches `base` unless
    `write_into` is called; dropping the overlay discards its writes.
    """

    __slots__ = ("_base", "_writes", "_keys")

    def __init__(self, base: KVReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}
        # The written keys in order, so that a scan costs O(log n + hits), not O(n): a block's
        # overlay may hold tens of thousands of writes while its txs scan small ranges.
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._base.get(key)

    def _write(self, key: bytes, value: bytes | None) -> None:
        if key not in self._writes:
            bisect.insort(self._keys, key)
        self._writes[key] = value

    def set(self, key: bytes, value: bytes) -> None:
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            # A str or bytearray key would make the write set depend on a Python type.
            raise TypeError("state keys and values are bytes")
        self._write(key, value)

    def delete(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError("state keys are bytes")
        self._write(key, None)

    def scan(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        lo = bisect.bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end)
        if lo >= hi:
            return self._base.scan(start, end)
        mine = [(k, self._writes[k]) for k in self._keys[lo:hi]]
        below = [(k, v) for k, v in self._base.scan(start, end) if k not in self._writes]
        return list(heapq.merge(below, ((k, v) for k, v in mine if v is not None)))

    def child(self) -> Overlay:
        """A new overlay on top of this one (a tx inside a block)."""
        return Overlay(self)

    def write_into(self, parent: Overlay) -> None:
        """Apply this overlay's writes to `parent` (which must be its base)."""
        if parent is not self._base:
            raise ValueError("an overlay writes only into the overlay it was built on")
        for key, value in self._writes.items():
            parent._write(key, value)

    @property
    def writes(self) -> Mapping[bytes, bytes | None]:
        """The buffered writes, key -> value or None (deleted); unordered."""
        return self._writes


class EmptyReader:
    """State with nothing in it (tests, and the base of a state computed from scratch)."""

    def get(self, key: bytes) -> bytes | None:
        return None

    def scan(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        return []


def write_set(writes: Mapping[bytes, bytes | None]) -> list[tuple[bytes, bytes | None]]:
    """The block's write set: every key written, with its final value or None, sorted by key."""
    return sorted(writes.items(), key=lambda kv: kv[0])


def leaf(key: bytes, value: bytes | None) -> bytes:
    """One write-set leaf: u32be(len(key)) || key || 0x01 || value, or ... || 0x00 if deleted.

    The length prefix makes the split between key and value unambiguous.
    """
    head = len(key).to_bytes(4, "big") + key
    return head + _DELETED_TAG if value is None else head + _SET_TAG + value


def write_set_root(writes: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """Merkle root (native/MERKLE.md) of the leaves of a sorted write set."""
    return native.merkle_root([leaf(k, v) for k, v in writes])


def next_app_hash(previous: bytes, writes: Mapping[bytes, bytes | None]) -> bytes:
    """App hash of a height: BLAKE3(previous app hash || Merkle root of the sorted write set)."""
    if len(previous) != 32:
        raise ValueError(f"an app hash is 32 bytes, got {len(previous)}")
    return blake3_256(previous + write_set_root(write_set(writes)))
