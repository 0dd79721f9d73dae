"""What consensus must know about the chain between two heights (CometBFT's `state.State`).

`ChainState` is the state after the last committed block: its id, time and commit, the app hash
and results hash the next block must carry, and the validator pipeline. Validator updates that
the application returns at height h take effect at h + 2: after block h the set of h + 1 is the
old `next_validators`, and `next_validators` becomes that set with the updates applied (and its
proposer priority incremented once, as CometBFT does).

Immutable and pure: `advance` returns the next state. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import native
from chain.app.abci import FinalizeBlockResult, ValidatorUpdate
from chain.consensus.validators import ValidatorSet
from chain.types.block import Block
from chain.types.block_id import BlockID
from chain.types.codec import encode
from chain.types.commit import Commit
from chain.types.genesis import Genesis

# last_results_hash of the first block: no block before it had results.
EMPTY_RESULTS_HASH = native.EMPTY_ROOT


def genesis_validator_updates(genesis: Genesis) -> tuple[ValidatorUpdate, ...]:
    return tuple(ValidatorUpdate(pubkey=v.pubkey, power=v.power) for v in genesis.validators)


def results_hash(results: FinalizeBlockResult) -> bytes:
    """Merkle root over each tx result's (code, codespace, events), in block order.

    The log is left out, as CometBFT leaves it out: it is for humans and may word the same
    failure differently on two nodes; codes and events are what clients act on.
    """
    return native.merkle_root([encode((r.code, r.codespace, r.events))
                               for r in results.tx_results])


@dataclass(frozen=True, slots=True)
class ChainState:
    chain_id: str
    genesis_time_ns: int
    # 0 before the first block.
    last_height: int
    last_block_id: BlockID | None
    last_block_time_ns: int
    # The commit this node saw for the last block: the next block's last_commit when it proposes.
    last_commit: Commit | None
    # The application's state after the last block, and its tx results' hash.
    app_hash: bytes
    last_results_hash: bytes
    # Sets of heights last_height + 1 (votes now), + 2, and last_height (signed last_commit).
    validators: ValidatorSet
    next_validators: ValidatorSet
    last_validators: ValidatorSet | None

    @property
    def height(self) -> int:
        """The height being decided."""
        return self.last_height + 1

    @classmethod
    def from_genesis(cls, genesis: Genesis, app_hash: bytes) -> ChainState:
        """The state before block 1: the genesis file's validators, the app's initial hash."""
        validators = ValidatorSet.new(genesis_validator_updates(genesis))
        return cls(
            chain_id=genesis.chain_id, genesis_time_ns=genesis.genesis_time_ns, last_height=0,
            last_block_id=None, last_block_time_ns=genesis.genesis_time_ns, last_commit=None,
            app_hash=app_hash, last_results_hash=EMPTY_RESULTS_HASH,
            validators=validators,
            next_validators=validators.copy_increment_proposer_priority(1),
            last_validators=None,
        )

    def advance(self, block: Block, block_id: BlockID, commit: Commit, *, app_hash: bytes,
                results_hash: bytes,
                validator_updates: Sequence[ValidatorUpdate]) -> ChainState:
        """The state after `block` (at `self.height`) was committed by `commit`."""
        if block.header.height != self.height:
            raise ValueError(f"block {block.header.height} applied to state at {self.height}")
        return replace(
            self.advance_validators(validator_updates), last_block_id=block_id,
            last_block_time_ns=block.header.time_ns, last_commit=commit, app_hash=app_hash,
            last_results_hash=results_hash,
        )

    def advance_validators(self, validator_updates: Sequence[ValidatorUpdate]) -> ChainState:
        """One height later as far as the validator pipeline goes (the block fields are left
        as they were): what a restart replays for every stored block."""
        after_next = self.next_validators.apply_updates(validator_updates) \
            .copy_increment_proposer_priority(1)
        return replace(self, last_height=self.height, last_validators=self.validators,
                       validators=self.next_validators, next_validators=after_next)
