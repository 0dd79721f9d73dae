"""Fixed keys, a genesis and small builders for the consensus unit tests: same inputs every run."""

from __future__ import annotations

import msgspec

from chain.consensus.blocks import block_id_of, make_block
from chain.consensus.chain_state import ChainState
from chain.consensus.events import Effect
from chain.consensus.validators import ValidatorSet
from chain.crypto import ed25519
from chain.types.block import Block
from chain.types.block_id import BlockID
from chain.types.genesis import ConsensusParams, Genesis, GenesisValidator
from chain.types.vote import Proposal, Vote, VoteType, sign_proposal, sign_vote
from tests.chain.sim.kvapp import state_hash
from tests.chain.sim.network import CHAIN_ID, OPERATOR, SIM_PARAMS, T0, validator_key

MS = 1_000_000
KEYS = [validator_key(i) for i in range(4)]
BY_ID = {k.id: k for k in KEYS}


def genesis(powers: tuple[int, ...] = (10, 10, 10, 10),
            params: ConsensusParams = SIM_PARAMS) -> Genesis:
    return Genesis(chain_id=CHAIN_ID, genesis_time_ns=T0, consensus=params, validators=tuple(
        GenesisValidator(name=f"v{i}", pubkey=KEYS[i].public_key, power=p, operator=OPERATOR)
        for i, p in enumerate(powers)))


def first_state(powers: tuple[int, ...] = (10, 10, 10, 10)) -> ChainState:
    """The chain before block 1, with the KV app's empty-state hash."""
    return ChainState.from_genesis(genesis(powers), state_hash({}))


def key_at(validators: ValidatorSet, index: int) -> ed25519.PrivateKey:
    return BY_ID[validators[index].id]


def block_for(state: ChainState, proposer: ed25519.PrivateKey, txs: tuple[bytes, ...] = (),
              time_ns: int | None = None) -> tuple[Block, BlockID]:
    block = make_block(state, time_ns=T0 + MS if time_ns is None else time_ns, txs=txs,
                       evidence=(), proposer=proposer.id)
    return block, block_id_of(block)


def proposal(key: ed25519.PrivateKey, height: int, round_: int, block_id: BlockID,
             pol_round: int = -1) -> Proposal:
    return sign_proposal(CHAIN_ID, Proposal(
        height=height, round=round_, pol_round=pol_round, block_id=block_id, time_ns=T0,
        proposer=key.id, signature=bytes(64)), key)


def vote(validators: ValidatorSet, key: ed25519.PrivateKey, type_: VoteType, height: int,
         round_: int, block_id: BlockID | None, time_ns: int = T0) -> Vote:
    index, _ = validators.by_id(key.id)  # type: ignore[misc]
    return sign_vote(CHAIN_ID, Vote(
        type=type_, height=height, round=round_, block_id=block_id, time_ns=time_ns,
        validator=key.id, validator_index=index, signature=bytes(64)), key)


def of_type(effects: list[Effect], type_: type) -> list:
    return [e for e in effects if isinstance(e, type_)]


def other_block_id(seed: int) -> BlockID:
    """A block id that names no real block (for votes in vote-set tests)."""
    from chain.types.block_id import PartSetHeader

    return BlockID(hash=bytes([seed]) * 32, parts=PartSetHeader(total=1, root=bytes(32)))


__all__ = ["CHAIN_ID", "KEYS", "MS", "T0", "msgspec"]
