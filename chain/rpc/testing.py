"""`MemoryNodeView`: an in-memory `NodeView` for tests of the RPC and of its clients.

It holds a chain of blocks that the test commits one call at a time (`commit_block`), answers
broadcasts from a table of verdicts, and keeps broadcast txs pending until a block includes them,
so that every broadcast mode can be exercised without consensus. Tests wait on its state
(`wait_for_height`, `wait_for_pending`, `waiters`) instead of sleeping.

For tests only: a node never uses it. It must never do I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import msgspec
import trio

from chain.app.abci import OK, Attribute, CheckTxResult, Event, QueryResult, TxResult
from chain.rpc.node_view import (
    BlockEvents,
    BroadcastMode,
    BroadcastResult,
    IndexedEvent,
    NodeStatus,
    TxRecord,
    ValidatorInfo,
)
from chain.types.block import EMPTY_EVIDENCE_HASH, Block, BlockHeader, data_hash
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.commit import BlockIDFlag, Commit, CommitSig, commit_hash
from chain.types.tx import tx_hash

T0_NS = 1_700_000_000_000_000_000
VALIDATOR_ID = bytes(range(20))


def default_tx_result(raw: bytes) -> TxResult:
    """What a tx does when the test does not say: succeeds and emits a "tx" event with its hash."""
    return TxResult(events=(Event("tx", (Attribute("hash", tx_hash(raw).hex()),)),))


QueryHandler = Callable[[str, Mapping[str, str], int | None], QueryResult]


class MemoryNodeView:
    """A scripted node: blocks, commits, txs and events in dicts; heights advance on demand."""

    def __init__(self, chain_id: str = "gonka-test-1", *, commit_timeout: float = 10.0) -> None:
        self.chain_id = chain_id
        self.commit_timeout = commit_timeout
        self.blocks: dict[int, Block] = {}
        self.commits: dict[int, Commit] = {}
        self.block_events: dict[int, BlockEvents] = {}
        self.txs: dict[bytes, TxRecord] = {}
        # check_tx verdicts by tx hash; txs not listed pass.
        self.verdicts: dict[bytes, CheckTxResult] = {}
        # Txs that passed the check and wait for a block, in arrival order.
        self.pending: list[bytes] = []
        self.broadcasts: list[tuple[bytes, BroadcastMode]] = []
        self.query_handler: QueryHandler = lambda path, params, height: QueryResult(
            code=1, log=f"unknown query path {path!r}")
        # Tasks now inside wait_for_height: a stream subscriber that caught up waits here.
        self.waiters = 0
        # Every height `events` was asked for, in order: a height asked twice means a
        # subscriber reconnected and resumed.
        self.events_calls: list[int] = []
        self._holds: dict[int, EventsHold] = {}
        self._latest = 0
        self._changed = trio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- the test's side ------------------------------------------------------------------------

    def commit_block(self, txs: Sequence[bytes] | None = None, *,
                     results: Sequence[TxResult] | None = None,
                     events: Iterable[Event] = (), time_ns: int | None = None) -> Block:
        """Commit the next block with `txs` (default: every pending tx) and wake waiters."""
        txs = tuple(self.pending if txs is None else txs)
        results = [default_tx_result(t) for t in txs] if results is None else list(results)
        height = self._latest + 1
        prev = self.blocks.get(self._latest)
        last_commit = self.commits.get(self._latest)
        header = BlockHeader(
            chain_id=self.chain_id, height=height,
            time_ns=T0_NS + height if time_ns is None else time_ns,
            last_block_id=None if prev is None else last_commit.block_id,  # type: ignore[union-attr]
            last_commit_hash=commit_hash(last_commit), data_hash=data_hash(txs),
            validators_hash=bytes(32), next_validators_hash=bytes(32),
            app_hash=bytes([height % 256]) * 32, last_results_hash=bytes(32),
            evidence_hash=EMPTY_EVIDENCE_HASH, proposer=VALIDATOR_ID,
        )
        block = Block(header=header, txs=txs, last_commit=last_commit)
        block_id = BlockID(hash=block.hash, parts=PartSetHeader(total=1, root=bytes(32)))
        self.commits[height] = Commit(height=height, round=0, block_id=block_id, signatures=(
            CommitSig(flag=BlockIDFlag.COMMIT, validator=VALIDATOR_ID, time_ns=header.time_ns,
                      signature=bytes([7]) * 64),))
        self.blocks[height] = block
        indexed = [IndexedEvent(None, e) for e in events]
        for i, (raw, result) in enumerate(zip(txs, results, strict=True)):
            h = tx_hash(raw)
            self.txs[h] = TxRecord(height=height, index=i, raw=raw, result=result)
            indexed.extend(IndexedEvent(h, e) for e in result.events)
        self.block_events[height] = BlockEvents(height, block.hash, header.time_ns,
                                                tuple(indexed))
        included = set(txs)
        self.pending = [t for t in self.pending if t not in included]
        self._latest = height
        self._notify()
        return block

    async def wait_for_pending(self, count: int) -> None:
        """Return once at least `count` txs wait for a block."""
        while len(self.pending) < count:
            await self._changed.wait()

    async def wait_for_waiters(self, count: int) -> None:
        """Return once exactly `count` tasks wait in `wait_for_height`."""
        while self.waiters != count:
            await self._changed.wait()

    # -- NodeView -------------------------------------------------------------------------------

    def latest_height(self) -> int:
        return self._latest

    async def wait_for_height(self, height: int) -> None:
        self.waiters += 1
        self._notify()
        try:
            while self._latest < height:
                await self._changed.wait()
        finally:
            self.waiters -= 1
            self._notify()

    async def status(self) -> NodeStatus:
        latest = self.blocks.get(self._latest)
        return NodeStatus(
            chain_id=self.chain_id, node_id=VALIDATOR_ID, latest_height=self._latest,
            latest_block_hash=b"" if latest is None else latest.hash,
            latest_app_hash=b"" if latest is None else latest.header.app_hash,
            latest_block_time_ns=0 if latest is None else latest.header.time_ns,
            catching_up=False,
            validator=ValidatorInfo(address=VALIDATOR_ID, pubkey=bytes(32), voting_power=10),
        )

    async def block(self, height: int) -> Block | None:
        return self.blocks.get(height)

    async def commit(self, height: int) -> Commit | None:
        return self.commits.get(height)

    async def tx(self, tx_hash_: bytes) -> TxRecord | None:
        return self.txs.get(tx_hash_)

    async def broadcast_tx(self, raw: bytes, mode: BroadcastMode) -> BroadcastResult:
        h = tx_hash(raw)
        self.broadcasts.append((raw, mode))
        verdict = self.verdicts.get(h, CheckTxResult())
        if verdict.code == OK:
            self.pending.append(raw)
            self._notify()
        if mode == "async":
            return BroadcastResult(hash=h)
        checked = BroadcastResult(hash=h, code=verdict.code, log=verdict.log,
                                  codespace=verdict.codespace)
        if mode == "sync" or verdict.code != OK:
            return checked
        with trio.move_on_after(self.commit_timeout):
            while h not in self.txs:
                await self._changed.wait()
        record = self.txs.get(h)
        if record is None:
            return checked
        return msgspec.structs.replace(checked, height=record.height, result=record.result)

    async def query(self, path: str, params: Mapping[str, str], height: int | None
                    ) -> QueryResult:
        return self.query_handler(path, params, height)

    async def events(self, height: int) -> BlockEvents | None:
        self.events_calls.append(height)
        hold = self._holds.pop(height, None)
        if hold is not None:
            hold.reached.set()
            await hold.release.wait()
        return self.block_events.get(height)

    def hold_events(self, height: int) -> EventsHold:
        """Make the next `events(height)` call stop until the hold is released."""
        hold = EventsHold()
        self._holds[height] = hold
        return hold


class EventsHold:
    """A pause in `MemoryNodeView.events`: `reached` is set when a reader arrives and waits
    for `release`."""

    def __init__(self) -> None:
        self.reached = trio.Event()
        self.release = trio.Event()
