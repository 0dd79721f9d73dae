"""Blocks and block headers (Tendermint-shaped).

The block hash is BLAKE3-256 of the header's canonical bytes; the header is tagged
"gonka/BlockHeader" so its hash lives in a domain of its own. The header commits to the block's
content through hashes: `data_hash` is the Merkle root (`native.merkle_root`) over the tx hashes
in block order, `last_commit_hash` the hash of the commit of the previous block, `evidence_hash`
the Merkle root over the canonical encodings of the evidence it carries (`chain.types.evidence`).

`Block.validate_basic` checks that a block agrees with its own header; whether the header agrees
with the chain (height, app hash, validator set, proposer, time) is `chain.consensus`'s job.
No I/O, no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec

import native
from chain.crypto.hashing import blake3_256
from chain.types.block_id import BlockID
from chain.types.codec import MAX_TX_BYTES, decode, encode
from chain.types.commit import Commit, commit_hash
from chain.types.common import ChainId, Hash32, Height, NodeId, TimeNs
from chain.types.evidence import (
    MAX_EVIDENCE_PER_BLOCK,
    DuplicateVoteEvidence,
    InvalidEvidence,
    evidence_hash,
)
from chain.types.tx import tx_hash

# Hard ceiling on a block's encoding; consensus parameters may set a lower one.
MAX_BLOCK_BYTES = 16 << 20
# evidence_hash of a block without evidence: the root of an empty tree.
EMPTY_EVIDENCE_HASH = native.EMPTY_ROOT

RawTx = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_TX_BYTES)]


class InvalidBlock(ValueError):
    """A block that contradicts its own header; `reason` says how."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"invalid block at height {height}: {reason}")
        self.height = height
        self.reason = reason


class BlockHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
                  tag="gonka/BlockHeader"):
    """Everything a block commits to, by hash; its canonical bytes are what `block_hash` hashes."""

    chain_id: ChainId
    height: Height
    time_ns: TimeNs
    # None only for the first block.
    last_block_id: BlockID | None
    last_commit_hash: Hash32
    data_hash: Hash32
    # Hashes of the validator set that signs this block and of the one that signs the next.
    validators_hash: Hash32
    next_validators_hash: Hash32
    # State after the previous block (the app hash lags one block, as in Tendermint).
    app_hash: Hash32
    last_results_hash: Hash32
    evidence_hash: Hash32
    proposer: NodeId


class Block(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A header, the raw txs it orders, the commit of the previous block (None at height 1) and
    the evidence of misbehaviour it stores on chain."""

    header: BlockHeader
    txs: tuple[RawTx, ...]
    last_commit: Commit | None
    evidence: Annotated[tuple[DuplicateVoteEvidence, ...],
                        msgspec.Meta(max_length=MAX_EVIDENCE_PER_BLOCK)] = ()

    @property
    def hash(self) -> bytes:
        return block_hash(self.header)

    def validate_basic(self) -> None:
        """Raise InvalidBlock unless the txs, the last commit and the header agree."""
        h = self.header

        def fail(reason: str) -> InvalidBlock:
            return InvalidBlock(h.height, reason)

        if (h.height == 1) != (h.last_block_id is None):
            raise fail("last_block_id must be absent at height 1 and only there")
        if (h.height == 1) != (self.last_commit is None):
            raise fail("last_commit must be absent at height 1 and only there")
        if self.last_commit is not None:
            if self.last_commit.height != h.height - 1:
                raise fail(f"last_commit is for height {self.last_commit.height}")
            if self.last_commit.block_id != h.last_block_id:
                raise fail("last_commit is for another block than last_block_id")
        if h.last_commit_hash != commit_hash(self.last_commit):
            raise fail("last_commit_hash does not match last_commit")
        if h.data_hash != data_hash(self.txs):
            raise fail("data_hash does not match the txs")
        if h.evidence_hash != evidence_hash(self.evidence):
            raise fail("evidence_hash does not match the evidence")
        for ev in self.evidence:
            try:
                ev.validate_basic()
            except InvalidEvidence as e:
                raise fail(e.reason) from None
        if len({ev.hash for ev in self.evidence}) != len(self.evidence):
            raise fail("the same evidence is listed twice")


def block_hash(header: BlockHeader) -> bytes:
    """BLAKE3-256 of the header's canonical bytes: the block's id."""
    return blake3_256(encode(header))


def data_hash(txs: Sequence[bytes]) -> bytes:
    """Merkle root over the tx hashes, in block order (the empty root for no txs)."""
    return native.merkle_root([tx_hash(t) for t in txs])


def decode_block(raw: bytes) -> Block:
    """Decode a block from untrusted bytes; raises DecodeError only. Call `validate_basic` next."""
    return decode(raw, Block, max_size=MAX_BLOCK_BYTES)
