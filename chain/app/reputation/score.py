"""Reputation score (filled in by the reputation work)."""

from __future__ import annotations

from chain.store.kv import KVReader


def reputation(store: KVReader, address: str) -> int:
    """0..100: grows with clean settled epochs (chain/app/PROTOCOL.md, reputation)."""
    del store, address
    return 0
