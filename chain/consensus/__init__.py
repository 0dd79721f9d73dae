"""Tendermint consensus for the chain node: a pure core, with its vote sets, WAL, sign state and
ticker as separate small parts (DESIGN.md section 4, CONVENTIONS.md).

Parts:
  validators.py   Validator, ValidatorSet: CometBFT's weighted round-robin proposer, set hash,
                  updates (power 0 removes).
  vote_set.py     VoteSet (2/3 majorities, conflicting votes -> DuplicateVoteEvidence),
                  verify_commit, check_vote_signatures (one native batch call).
  chain_state.py  ChainState: last block, app hash, results hash and the validator pipeline
                  (updates returned at height h take effect at h + 2).
  blocks.py       block ids (64 KiB part sets), make_block, validate_block (the consensus half of
                  valid(v)).
  evidence.py     EvidencePool: duplicate votes waiting for a block; checks a block's evidence.
  events.py       the Event and Effect types.
  state.py        ConsensusState: the algorithm. handle(event) -> [effects]. No I/O, no clock.
  sign_state.py   SignRecord, check_sign (never two messages for one height/round/step),
                  SignStateFile (fsynced).
  wal.py          WAL: every event fed to the core; rotated per height; torn tails repaired.
  storage.py      DiskFiles / MemoryFiles (the simulation's disk, which can crash).
  ticker.py       TimeoutTicker: ScheduleTimeout -> TimeoutFired on trio's clock.
  driver.py       ConsensusDriver: the synchronous glue (app, block store, WAL, sign state),
                  handshake and replay on start, block sync.

Integration contract with the node shell (the trio program that owns p2p and the RPC):

    driver = ConsensusDriver(genesis, app, store, mempool, WAL(home/"cs.wal"),
                             SignStateFile(home/"sign_state"), node_key, on_commit=hook)
    send_timeouts, timeouts = trio.open_memory_channel(16)
    ticker = TimeoutTicker(send_timeouts)           # nursery.start(ticker.run)
    effects = driver.start(time.time_ns())
    then, from ONE task, for every input:
        effects = driver.handle(ProposalReceived(proposal, block, now_ns))   # from p2p
                  driver.handle(VotesReceived(votes, now_ns))                 # from p2p
                  driver.handle(EvidenceReceived(evidence, now_ns))           # from p2p
                  driver.handle(timeout_fired)                                # from the ticker
                  driver.catch_up(block, commit, now_ns)                      # block sync
        and carry out each effect in order:
            BroadcastProposal(proposal, block) / BroadcastVote(vote) -> gossip to peers
            ScheduleTimeout(...)                                      -> ticker.schedule(...)
            RecordEvidence(evidence)                                  -> gossip to peers
    every second or so (and on a new peer): send driver.rebroadcast() again, since the core
    never retransmits by itself. It holds the current proposal and every vote of the height,
    others' included: relaying them is what keeps the network live when a validator equivocates
    (see ConsensusState.rebroadcast), so p2p must not suppress a message only because it was
    sent before. A peer that reports a lower height gets
    store.load_block(h) and store.load_commit(h) for block sync.
The driver has already done the app-facing work (prepare/process proposal, finalize, commit, the
block store, the WAL and the fsynced sign state) before it returns; everything it returns may be
sent at once. The `on_commit(block, commit, results)` hook is where the mempool drops committed
txs and the RPC publishes new-block events.

Decisions to know:
  * Valid(v) = validate_block (header against the chain state, last_commit verified with the
    previous height's set) + evidence check + the app's process_proposal, also for own blocks.
  * Proposals for any round within ROUND_WINDOW are kept (the commit rule works in any round);
    the first proposal of a round wins. A block in a fresh proposal (pol_round -1) must name the
    proposal's signer as its proposer; a re-proposal keeps its original proposer.
  * Block time: the proposer's max(now, previous + 1 ms); validators require strictly later.
  * The genesis validator set is the genesis file's; init_chain may return none or the same.
    init_chain is called when app.info() reports an empty state (height 0, no app hash); an
    application that made its genesis state durable reports its hash and is not asked again.
  * Restart derives the chain state from genesis and the stored results: O(height). A stored
    snapshot of ChainState would make it O(1); not done yet.
"""

from chain.consensus.chain_state import ChainState
from chain.consensus.driver import BlockStore, ConsensusDriver, MemoryBlockStore, TxSource
from chain.consensus.events import (
    BlockCommitted,
    BroadcastProposal,
    BroadcastVote,
    BuildProposal,
    CommitBlock,
    CommitReceived,
    Effect,
    Event,
    EvidenceReceived,
    JudgeProposal,
    PersistBeforeSend,
    ProposalJudged,
    ProposalReceived,
    ProposalTxsReady,
    RecordEvidence,
    RoundState,
    ScheduleTimeout,
    Start,
    Step,
    TimeoutFired,
    VotesReceived,
)
from chain.consensus.sign_state import SignRecord, SignStateFile
from chain.consensus.state import ConsensusState
from chain.consensus.ticker import TimeoutTicker
from chain.consensus.validators import Validator, ValidatorSet
from chain.consensus.vote_set import VoteSet, verify_commit
from chain.consensus.wal import WAL

__all__ = [
    "BlockCommitted",
    "BlockStore",
    "BroadcastProposal",
    "BroadcastVote",
    "BuildProposal",
    "ChainState",
    "CommitBlock",
    "CommitReceived",
    "ConsensusDriver",
    "ConsensusState",
    "Effect",
    "Event",
    "EvidenceReceived",
    "JudgeProposal",
    "MemoryBlockStore",
    "PersistBeforeSend",
    "ProposalJudged",
    "ProposalReceived",
    "ProposalTxsReady",
    "RecordEvidence",
    "RoundState",
    "ScheduleTimeout",
    "SignRecord",
    "SignStateFile",
    "Start",
    "Step",
    "TimeoutFired",
    "TimeoutTicker",
    "TxSource",
    "Validator",
    "ValidatorSet",
    "VoteSet",
    "VotesReceived",
    "WAL",
    "verify_commit",
]
