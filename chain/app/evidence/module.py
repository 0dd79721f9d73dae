"""The evidence module as the app sees it. No messages: its input is the evidence blocks carry,
handed over by `finalize_block` (chain.app.evidence.punish).

Queries:
    evidence/double_signs -> [{validator, pubkey, participant, evidence_hash, evidence_height,
                               height, power, power_removed, collateral_burned, slash_bps}]
                             (ids, keys and hashes in hex), sorted by consensus key
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from chain.app.context import Module
from chain.app.evidence.state import all_tombstones
from chain.store.kv import KVReader


class DoubleSignView(msgspec.Struct, frozen=True):
    validator: str
    pubkey: str
    participant: str
    evidence_hash: str
    evidence_height: int
    height: int
    power: int
    power_removed: bool
    collateral_burned: int
    slash_bps: int


def query_double_signs(store: KVReader, params: Mapping[str, str]) -> list[DoubleSignView]:
    return [DoubleSignView(
        validator=r.validator.hex(), pubkey=r.pubkey.hex(), participant=r.participant,
        evidence_hash=r.evidence_hash.hex(), evidence_height=r.evidence_height, height=r.height,
        power=r.power, power_removed=r.power_removed, collateral_burned=r.collateral_burned,
        slash_bps=r.slash_bps) for r in all_tombstones(store)]


MODULE = Module(name="evidence", queries={"double_signs": query_double_signs})
