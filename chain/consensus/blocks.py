"""Making a proposal block and deciding whether a proposed block may follow the chain.

`validate_block` is the consensus half of valid(v) in the Tendermint algorithm (the application's
`process_proposal` is the other half): the block agrees with itself (`Block.validate_basic`), and
its header agrees with the chain state: chain id, height, last block id, time strictly after the
previous block's, a proposer from the set, the validator set hashes, the app hash and results
hash left by the previous block, and a `last_commit` in which more than 2/3 of the previous
height's set signed the previous block. Evidence is checked by the evidence pool.

A block id names the block's header hash and the part set it is gossiped in: its canonical bytes
cut into 64 KiB parts under a Merkle root. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import native
from chain.consensus.chain_state import ChainState
from chain.consensus.vote_set import InvalidCommit, verify_commit
from chain.types.block import Block, BlockHeader, InvalidBlock, data_hash
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.codec import encode
from chain.types.commit import commit_hash
from chain.types.evidence import DuplicateVoteEvidence, evidence_hash
from chain.types.genesis import ConsensusParams

BLOCK_PART_SIZE = 64 << 10
# The proposer's clock may lag the last block's time; its block is then 1 ms after it.
MIN_BLOCK_INTERVAL_NS = 1_000_000


class BlockRejected(ValueError):
    """A proposed block that may not follow the chain; `reason` says why."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"block at height {height} rejected: {reason}")
        self.height = height
        self.reason = reason


def part_set_header(raw: bytes) -> PartSetHeader:
    """The part set of a block's canonical bytes: how many 64 KiB parts, and their Merkle root."""
    parts = [raw[i:i + BLOCK_PART_SIZE] for i in range(0, len(raw), BLOCK_PART_SIZE)] or [b""]
    return PartSetHeader(total=len(parts), root=native.merkle_root(parts))


def block_id_of(block: Block) -> BlockID:
    return BlockID(hash=block.hash, parts=part_set_header(encode(block)))


def proposal_time(state: ChainState, now_ns: int) -> int:
    """A proposer's block time: its clock, but never at or before the previous block's time."""
    if state.last_height == 0:
        return max(now_ns, state.genesis_time_ns)
    return max(now_ns, state.last_block_time_ns + MIN_BLOCK_INTERVAL_NS)


def make_block(state: ChainState, *, time_ns: int, txs: Sequence[bytes],
               evidence: Sequence[DuplicateVoteEvidence], proposer: bytes) -> Block:
    """The block `proposer` proposes at `state.height` with these txs and evidence."""
    txs, evidence = tuple(txs), tuple(evidence)
    header = BlockHeader(
        chain_id=state.chain_id, height=state.height, time_ns=time_ns,
        last_block_id=state.last_block_id, last_commit_hash=commit_hash(state.last_commit),
        data_hash=data_hash(txs), validators_hash=state.validators.hash(),
        next_validators_hash=state.next_validators.hash(), app_hash=state.app_hash,
        last_results_hash=state.last_results_hash, evidence_hash=evidence_hash(evidence),
        proposer=proposer,
    )
    return Block(header=header, txs=txs, last_commit=state.last_commit, evidence=evidence)


def _with_fitting_evidence(state: ChainState, params: ConsensusParams, time_ns: int,
                           evidence: Sequence[DuplicateVoteEvidence], proposer: bytes) -> Block:
    evidence = list(evidence)
    block = make_block(state, time_ns=time_ns, txs=(), evidence=evidence, proposer=proposer)
    while evidence and len(encode(block)) > params.block_max_bytes:
        evidence.pop()
        block = make_block(state, time_ns=time_ns, txs=(), evidence=evidence, proposer=proposer)
    return block


def _budget(params: ConsensusParams, empty: Block) -> int:
    # 8 bytes of slack: the txs array header grows from 1 to at most 5 bytes as it fills.
    return max(0, params.block_max_bytes - len(encode(empty)) - 8)


def tx_budget(state: ChainState, params: ConsensusParams, *, time_ns: int,
              evidence: Sequence[DuplicateVoteEvidence], proposer: bytes) -> int:
    """How many bytes of txs (each counted with its MessagePack header) a block can still take."""
    return _budget(params, _with_fitting_evidence(state, params, time_ns, evidence, proposer))


def fit_block(state: ChainState, params: ConsensusParams, *, time_ns: int, txs: Sequence[bytes],
              evidence: Sequence[DuplicateVoteEvidence], proposer: bytes) -> Block:
    """A proposer's block that `validate_block` accepts whatever the application returned: the
    evidence that fits, then the txs in order while they fit the count and byte limits."""
    empty = _with_fitting_evidence(state, params, time_ns, evidence, proposer)
    budget, kept, used = _budget(params, empty), [], 0
    for tx in list(txs)[:params.block_max_txs]:
        cost = len(tx) + (2 if len(tx) < 256 else 3 if len(tx) < 65536 else 5)
        if used + cost > budget:
            break
        kept.append(tx)
        used += cost
    return make_block(state, time_ns=time_ns, txs=kept, evidence=empty.evidence,
                      proposer=proposer)


def validate_block(state: ChainState, params: ConsensusParams, block: Block) -> None:
    """Raise BlockRejected unless `block` may be the next block after `state` (evidence aside)."""
    h = block.header
    height = state.height

    def fail(reason: str) -> BlockRejected:
        return BlockRejected(h.height, reason)

    if h.chain_id != state.chain_id:
        raise fail(f"chain id {h.chain_id!r}, expected {state.chain_id!r}")
    if h.height != height:
        raise fail(f"expected height {height}")
    try:
        block.validate_basic()
    except InvalidBlock as e:
        raise fail(e.reason) from None
    if len(block.txs) > params.block_max_txs:
        raise fail(f"{len(block.txs)} txs exceed the limit of {params.block_max_txs}")
    size = len(encode(block))
    if size > params.block_max_bytes:
        raise fail(f"{size} bytes exceed the limit of {params.block_max_bytes}")
    if h.last_block_id != state.last_block_id:
        raise fail("last_block_id is not the last committed block")
    if state.last_height == 0:
        if h.time_ns < state.genesis_time_ns:
            raise fail("the first block is older than the genesis time")
    elif h.time_ns <= state.last_block_time_ns:
        raise fail("time is not after the previous block's")
    if not state.validators.has(h.proposer):
        raise fail(f"proposer {h.proposer.hex()} is not a validator")
    if h.validators_hash != state.validators.hash():
        raise fail("validators_hash is not the current validator set's")
    if h.next_validators_hash != state.next_validators.hash():
        raise fail("next_validators_hash is not the next validator set's")
    if h.app_hash != state.app_hash:
        raise fail("app_hash is not the state after the previous block")
    if h.last_results_hash != state.last_results_hash:
        raise fail("last_results_hash is not the previous block's results")
    if block.last_commit is not None:
        assert state.last_validators is not None and state.last_block_id is not None
        try:
            verify_commit(state.chain_id, state.last_validators, height - 1,
                          state.last_block_id, block.last_commit)
        except InvalidCommit as e:
            raise fail(f"last_commit: {e.reason}") from None
