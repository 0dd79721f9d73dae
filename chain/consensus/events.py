"""What goes into the consensus core (events) and what comes out of it (effects).

Events are msgspec structs with a tag, because every event fed to the core is also written to the
write-ahead log and replayed from it after a crash; each carries `now_ns`, the node's clock when
it happened, since the core has no clock of its own. Effects are requests to the shell: send this,
start that timer, ask the application, persist this before sending.

This module only defines the vocabulary; it must never hold behaviour.
"""

from __future__ import annotations

import enum

import msgspec

from chain.app.abci import ValidatorUpdate
from chain.consensus.sign_state import SignRecord
from chain.types.block import Block, RawTx
from chain.types.block_id import BlockID
from chain.types.commit import Commit
from chain.types.evidence import DuplicateVoteEvidence
from chain.types.vote import Proposal, Vote


class Step(enum.IntEnum):
    """Where a height stands. Timeouts are named by the step they end (COMMIT has none)."""

    NEW_HEIGHT = 0  # waiting timeout_commit before round 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4  # decided; waiting for the block to be applied


# -- events (written to the WAL) --------------------------------------------------------------

class _Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag=True):
    pass


class Start(_Event):
    """The node (re)starts consensus: schedule round 0 of the current height if not done."""

    now_ns: int


class ProposalReceived(_Event):
    """A signed proposal and the block it names (own proposals are handled inside the core)."""

    proposal: Proposal
    block: Block
    now_ns: int


class VotesReceived(_Event):
    """Votes from peers, checked in one signature batch per round and type."""

    votes: tuple[Vote, ...]
    now_ns: int


class EvidenceReceived(_Event):
    evidence: DuplicateVoteEvidence
    now_ns: int


class TimeoutFired(_Event):
    height: int
    round: int
    step: Step
    now_ns: int


class ProposalTxsReady(_Event):
    """The application's answer to BuildProposal: the txs of the block to propose."""

    height: int
    round: int
    txs: tuple[RawTx, ...]
    now_ns: int


class ProposalJudged(_Event):
    """The application's answer to JudgeProposal (`process_proposal`)."""

    block_hash: bytes
    valid: bool
    now_ns: int


class CommitReceived(_Event):
    """Block sync: a block of the current height with a commit for it from a peer."""

    block: Block
    commit: Commit
    now_ns: int


class BlockCommitted(_Event):
    """The application finalized and committed the decided block (answer to CommitBlock)."""

    height: int
    app_hash: bytes
    results_hash: bytes
    validator_updates: tuple[ValidatorUpdate, ...]
    now_ns: int


class EndHeight(_Event):
    """WAL marker, never fed to the core: `height` is committed, what follows is the next."""

    height: int


Event = (Start | ProposalReceived | VotesReceived | EvidenceReceived | TimeoutFired
         | ProposalTxsReady | ProposalJudged | CommitReceived | BlockCommitted)
WalRecord = Event | EndHeight


# -- effects -----------------------------------------------------------------------------------

class _Effect(msgspec.Struct, frozen=True):
    pass


class PersistBeforeSend(_Effect):
    """The next effect sends a message this node just signed: make the WAL and the sign state
    (`record`) durable first, so that a crash can never lead to signing a conflicting one."""

    record: SignRecord


class BroadcastProposal(_Effect):
    proposal: Proposal
    block: Block


class BroadcastVote(_Effect):
    vote: Vote


class ScheduleTimeout(_Effect):
    """Fire TimeoutFired(height, round, step) after `duration_ms`; replaces any earlier one."""

    height: int
    round: int
    step: Step
    duration_ms: int


class BuildProposal(_Effect):
    """Ask the application for the txs of a block (answer: ProposalTxsReady)."""

    height: int
    round: int
    time_ns: int
    max_bytes: int
    max_txs: int


class JudgeProposal(_Effect):
    """Ask the application whether `block` is acceptable (answer: ProposalJudged)."""

    block: Block


class CommitBlock(_Effect):
    """Finalize and commit `block`, store it with `commit` (answer: BlockCommitted)."""

    block: Block
    commit: Commit


class RecordEvidence(_Effect):
    """New evidence of misbehaviour: gossip it (the core already keeps it for a proposal)."""

    evidence: DuplicateVoteEvidence


Effect = (PersistBeforeSend | BroadcastProposal | BroadcastVote | ScheduleTimeout
          | BuildProposal | JudgeProposal | CommitBlock | RecordEvidence)


# -- observation -------------------------------------------------------------------------------

class RoundState(msgspec.Struct, frozen=True):
    """A comparable picture of the core (what WAL replay must rebuild; what RPC can show)."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_block_id: BlockID | None
    valid_round: int
    valid_block_id: BlockID | None
    proposals: tuple[Proposal, ...]
    votes: tuple[Vote, ...]
    last_signed: SignRecord | None
