"""State of the evidence module: one tombstone per consensus key punished for double signing.

Keys:
    evidence/tombstone/<32-byte ed25519 pubkey> -> DoubleSign

A tombstone is written when the first piece of evidence about a key is punished and never
removed: later evidence about that key (the same evidence again, or the same incident's other
votes) changes nothing, and a host whose registered consensus key is tombstoned gets no PoC
weight (chain.app.poc.weights).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.app.context import get_value, put_value
from chain.store.kv import KVReader, Overlay, scan_prefix
from chain.types.common import NodeId

TOMBSTONE = b"evidence/tombstone/"


class DoubleSign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one double-signing incident cost, as recorded when it was punished."""

    validator: NodeId                # the 20-byte id the votes name
    pubkey: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    participant: str                 # the host punished ("" if the key had none)
    evidence_hash: bytes             # the evidence that was punished
    evidence_height: int             # the height of the conflicting votes
    height: int                      # the block that carried the evidence
    power: int                       # the key's validator power before (0 if it had none)
    power_removed: bool              # False only when it held all the power (kept, see punish)
    collateral_burned: int
    slash_bps: int


def get_tombstone(store: KVReader, pubkey: bytes) -> DoubleSign | None:
    return get_value(store, TOMBSTONE + pubkey, DoubleSign)


def is_tombstoned(store: KVReader, pubkey: bytes) -> bool:
    return store.get(TOMBSTONE + pubkey) is not None


def put_tombstone(store: Overlay, record: DoubleSign) -> None:
    put_value(store, TOMBSTONE + record.pubkey, record)


def all_tombstones(store: KVReader) -> list[DoubleSign]:
    """Every punished incident, sorted by consensus key."""
    return [msgspec.msgpack.decode(v, type=DoubleSign) for _, v in scan_prefix(store, TOMBSTONE)]
