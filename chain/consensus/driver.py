"""The synchronous glue between the consensus core, the application, the block store and the disk.

`ConsensusDriver` owns a `ConsensusState` and carries out every effect that does not need the
network or a timer, at once and in order:
  * each event fed is written to the WAL first (BlockCommitted aside: the WAL rotation marks it);
  * PersistBeforeSend: fsync the WAL and save the sign state before the message is released;
  * BuildProposal: `tx_source.reap` then `app.prepare_proposal`, answered with ProposalTxsReady;
  * JudgeProposal: `app.process_proposal`, answered with ProposalJudged;
  * CommitBlock: `app.finalize_block`, `store.save`, `app.commit`, WAL rotation (carrying the
    pending evidence over), the `on_commit` hook, answered with BlockCommitted.
What it returns is only what needs I/O: BroadcastProposal, BroadcastVote, ScheduleTimeout (for
`ticker.TimeoutTicker`) and RecordEvidence. The same object serves the deterministic simulation
and the trio node, which calls it from one task (it is not thread-safe and never awaits).

`start` is CometBFT's handshake and replay: stored blocks the application has not applied (a crash
between `store.save` and `app.commit`) are replayed into it, the chain state is derived from the
genesis file and the stored results, and the WAL of the current height is replayed into a fresh
core; then the sign state is restored and round 0 is scheduled. `catch_up` is block sync.

Crash order that keeps this sound: store.save, then app.commit, then the WAL rotation; own
messages leave only after the WAL and the sign state are fsynced.

The driver never touches the network or a clock: time comes in with each event, and what must be
sent is returned.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from chain.app.abci import Application, FinalizeBlockResult
from chain.consensus.blocks import block_id_of
from chain.consensus.chain_state import ChainState, genesis_validator_updates, results_hash
from chain.consensus.events import (
    BlockCommitted,
    BuildProposal,
    CommitBlock,
    CommitReceived,
    Effect,
    Event,
    EvidenceReceived,
    JudgeProposal,
    PersistBeforeSend,
    ProposalJudged,
    ProposalTxsReady,
    ScheduleTimeout,
    Start,
)
from chain.consensus.evidence import EvidencePool
from chain.consensus.sign_state import SignStateFile
from chain.consensus.state import ConsensusState
from chain.consensus.wal import WAL, read_wal
from chain.crypto.ed25519 import PrivateKey
from chain.types.block import Block
from chain.types.commit import Commit
from chain.types.genesis import Genesis


class BlockStore(Protocol):
    """Committed blocks, the commit this node saw for each, and the results of executing them."""

    def height(self) -> int:
        """The last stored height (0 when empty)."""
        ...

    def save(self, block: Block, commit: Commit, results: FinalizeBlockResult) -> None:
        """Store block h with its commit and results, durably, all or nothing."""
        ...

    def load_block(self, height: int) -> Block | None: ...

    def load_commit(self, height: int) -> Commit | None: ...

    def load_results(self, height: int) -> FinalizeBlockResult | None: ...


class TxSource(Protocol):
    """Where a proposer's txs come from: the mempool."""

    def reap(self, max_bytes: int, max_txs: int) -> list[bytes]: ...


class HandshakeError(Exception):
    """The application, the block store and the WAL cannot be reconciled; a human must look."""


class MemoryBlockStore:
    """A BlockStore in memory: for tests, the simulation, and nodes that keep nothing."""

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[Block, Commit, FinalizeBlockResult]] = {}

    def height(self) -> int:
        return max(self._blocks, default=0)

    def save(self, block: Block, commit: Commit, results: FinalizeBlockResult) -> None:
        height = block.header.height
        if height != self.height() + 1:
            raise ValueError(f"block {height} saved after block {self.height()}")
        self._blocks[height] = (block, commit, results)

    def load_block(self, height: int) -> Block | None:
        entry = self._blocks.get(height)
        return None if entry is None else entry[0]

    def load_commit(self, height: int) -> Commit | None:
        entry = self._blocks.get(height)
        return None if entry is None else entry[1]

    def load_results(self, height: int) -> FinalizeBlockResult | None:
        entry = self._blocks.get(height)
        return None if entry is None else entry[2]


OnCommit = Callable[[Block, Commit, FinalizeBlockResult], None]


class ConsensusDriver:
    def __init__(self, genesis: Genesis, app: Application, store: BlockStore,
                 tx_source: TxSource, wal: WAL, sign_state: SignStateFile,
                 priv_key: PrivateKey | None, *, on_commit: OnCommit | None = None) -> None:
        self.genesis = genesis
        self.app = app
        self.store = store
        self.tx_source = tx_source
        self.wal = wal
        self.sign_state = sign_state
        self.priv_key = priv_key
        self.on_commit = on_commit
        self.core: ConsensusState | None = None

    @property
    def height(self) -> int:
        """The height being decided."""
        assert self.core is not None, "start() first"
        return self.core.height

    # -- start: handshake and replay ---------------------------------------------------------

    def start(self, now_ns: int) -> list[Effect]:
        """Reconcile app, store and WAL, rebuild the core, and return the first effects."""
        chain, pool = self._handshake()
        self.core = ConsensusState(chain, self.genesis.consensus, self.priv_key, evidence=pool)
        contents = read_wal(self.wal.path, self.wal.files)
        if contents.end_height != chain.last_height:
            # Events of another height (or no WAL yet): nothing to replay, start afresh.
            self.wal.end_height(chain.last_height)
            events: tuple[Event, ...] = ()
        else:
            events = contents.events
        last_timeout: ScheduleTimeout | None = None
        for event in events:
            for effect in self._process(event, replay=True):
                if isinstance(effect, ScheduleTimeout):
                    last_timeout = effect
        self.core.restore_sign_state(self.sign_state.load())
        out: list[Effect] = [] if last_timeout is None else [last_timeout]
        # Questions the replayed core asked the app and whose answers the WAL did not keep.
        out += self._carry_out(self.core.pending_requests(), now_ns)
        out += self._process(Start(now_ns=now_ns))
        return out + self.core.rebroadcast()

    def _handshake(self) -> tuple[ChainState, EvidencePool]:
        info = self.app.info()
        stored = self.store.height()
        if info.last_height > stored:
            raise HandshakeError(f"the application is at height {info.last_height}, "
                                 f"the block store only at {stored}")
        app_hash = info.last_app_hash
        if info.last_height == 0 and not info.last_app_hash:
            # An empty application. One that made its genesis state durable already (and then
            # restarted before block 1) reports that state's hash and is not asked again.
            init = self.app.init_chain(self.genesis)
            wanted = sorted((u.pubkey, u.power) for u in genesis_validator_updates(self.genesis))
            if init.validators and sorted((u.pubkey, u.power) for u in init.validators) != wanted:
                raise HandshakeError("init_chain returned other validators than the genesis file")
            app_hash = init.app_hash
        for height in range(info.last_height + 1, stored + 1):
            app_hash = self._replay_block(height)
        return self._derive_chain_state(app_hash)

    def _replay_block(self, height: int) -> bytes:
        block = self.store.load_block(height)
        if block is None:
            raise HandshakeError(f"block {height} is missing from the store")
        results = self.app.finalize_block(block)
        if results != self.store.load_results(height):
            raise HandshakeError(f"replaying block {height} gave other results than stored")
        app_hash = self.app.commit()
        following = self.store.load_block(height + 1)
        if following is not None and following.header.app_hash != app_hash:
            raise HandshakeError(f"replaying block {height} gave app hash {app_hash.hex()}, "
                                 f"block {height + 1} says {following.header.app_hash.hex()}")
        return app_hash

    def _derive_chain_state(self, app_hash: bytes) -> tuple[ChainState, EvidencePool]:
        """The chain state after the last stored block, from the genesis file and the validator
        updates of every stored block (O(height); see the package notes), and an evidence pool
        knowing the recent validator sets and the evidence already on chain."""
        pool = EvidencePool(self.genesis.chain_id)
        chain = ChainState.from_genesis(self.genesis, app_hash)
        last = self.store.height()
        horizon = last - pool.max_age
        for height in range(1, last + 1):
            if height >= horizon:
                pool.set_validators(height, chain.validators)
            chain = chain.advance_validators(self._results(height).validator_updates)
        if last == 0:
            return chain, pool
        block, commit = self.store.load_block(last), self.store.load_commit(last)
        if block is None or commit is None:
            raise HandshakeError(f"block {last} or its commit is missing from the store")
        for height in range(max(1, horizon), last + 1):
            pool.mark_committed(self.store.load_block(height).evidence, height)  # type: ignore
        chain = ChainState(
            chain_id=chain.chain_id, genesis_time_ns=chain.genesis_time_ns, last_height=last,
            last_block_id=block_id_of(block), last_block_time_ns=block.header.time_ns,
            last_commit=commit, app_hash=app_hash,
            last_results_hash=results_hash(self._results(last)), validators=chain.validators,
            next_validators=chain.next_validators, last_validators=chain.last_validators)
        return chain, pool

    def _results(self, height: int) -> FinalizeBlockResult:
        results = self.store.load_results(height)
        if results is None:
            raise HandshakeError(f"the results of block {height} are missing from the store")
        return results

    # -- running -----------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        """Feed one event; the effects that need the network or a timer."""
        return self._process(event)

    def catch_up(self, block: Block, commit: Commit, now_ns: int) -> list[Effect]:
        """Block sync: apply `block` of the current height if `commit` proves it."""
        return self._process(CommitReceived(block=block, commit=commit, now_ns=now_ns))

    def rebroadcast(self, *, relay: bool = True) -> list[Effect]:
        """Messages of this height to send again (call it periodically); see
        ConsensusState.rebroadcast."""
        assert self.core is not None, "start() first"
        return self.core.rebroadcast(relay=relay)

    def _process(self, first: Event, *, replay: bool = False) -> list[Effect]:
        assert self.core is not None, "start() first"
        out: list[Effect] = []
        queue: deque[Event] = deque([first])
        while queue:
            event = queue.popleft()
            if not replay and not isinstance(event, BlockCommitted):
                news = self.core.news(event)
                if news is None:
                    continue  # a message heard before: nothing to log, nothing to do
                event = news
                self.wal.write(event)
            for effect in self.core.handle(event):
                if isinstance(effect, PersistBeforeSend):
                    if not replay:
                        self.wal.flush_sync()
                        self.sign_state.save(effect.record)
                elif isinstance(effect, CommitBlock):
                    # Even in replay: a decision the WAL saw but the store did not.
                    queue.append(self._commit(effect, event.now_ns))
                elif isinstance(effect, (BuildProposal, JudgeProposal)):
                    if not replay:  # replay keeps the answers; missing ones are asked after
                        queue.append(self._ask_app(effect, event.now_ns))
                elif not replay or isinstance(effect, ScheduleTimeout):
                    out.append(effect)
        return out

    def _carry_out(self, requests: list[Effect], now_ns: int) -> list[Effect]:
        out: list[Effect] = []
        for request in requests:
            out += self._process(self._ask_app(request, now_ns))
        return out

    def _ask_app(self, request: Effect, now_ns: int) -> Event:
        if isinstance(request, BuildProposal):
            candidates = self.tx_source.reap(request.max_bytes, request.max_txs)
            txs = self.app.prepare_proposal(
                candidates, height=request.height, time_ns=request.time_ns,
                max_bytes=request.max_bytes, max_txs=request.max_txs)
            return ProposalTxsReady(height=request.height, round=request.round,
                                    txs=tuple(txs), now_ns=now_ns)
        assert isinstance(request, JudgeProposal)
        valid = bool(self.app.process_proposal(request.block))
        return ProposalJudged(block_hash=request.block.hash, valid=valid, now_ns=now_ns)

    def _carried_evidence(self, block: Block, now_ns: int) -> list[Event]:
        """The evidence still pending after `block`, as events for the next height's WAL."""
        assert self.core is not None
        on_chain = {e.hash for e in block.evidence}
        return [EvidenceReceived(evidence=e, now_ns=now_ns)
                for e in self.core.evidence.pending(block.header.height + 1)
                if e.hash not in on_chain]

    def _commit(self, effect: CommitBlock, now_ns: int) -> BlockCommitted:
        block, commit = effect.block, effect.commit
        results = self.app.finalize_block(block)
        if len(results.tx_results) != len(block.txs):
            raise RuntimeError(f"finalize_block returned {len(results.tx_results)} results for "
                               f"{len(block.txs)} txs")
        self.store.save(block, commit, results)
        app_hash = self.app.commit()
        self.wal.end_height(block.header.height, self._carried_evidence(block, now_ns))
        if self.on_commit is not None:
            self.on_commit(block, commit, results)
        return BlockCommitted(height=block.header.height, app_hash=app_hash,
                              results_hash=results_hash(results),
                              validator_updates=tuple(results.validator_updates), now_ns=now_ns)


__all__ = [
    "BlockStore",
    "ConsensusDriver",
    "HandshakeError",
    "MemoryBlockStore",
    "TxSource",
]
