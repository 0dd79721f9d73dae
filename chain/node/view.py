"""The running node as the RPC sees it: `chain.rpc.node_view.NodeView` over the node's parts.

Reads go straight to the block store and the application (SQLite reads, synchronous and short).
`broadcast_tx` hands txs to the node's mempool through `ChainNode.submit_txs`, so that txs from
the RPC and from peers are admitted by the same code. This module must never change state except
through the mempool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import trio

from chain.app.abci import ERR_MEMPOOL_FULL, OK, QueryResult
from chain.rpc.node_view import (
    BlockEvents,
    BroadcastMode,
    BroadcastResult,
    IndexedEvent,
    NodeStatus,
    TxRecord,
    ValidatorInfo,
)
from chain.types.block import Block
from chain.types.commit import Commit
from chain.types.tx import tx_hash

if TYPE_CHECKING:
    from chain.node.node import ChainNode


class ChainNodeView:
    def __init__(self, node: ChainNode, commit_timeout_s: float) -> None:
        self._node = node
        self._commit_timeout_s = commit_timeout_s

    def latest_height(self) -> int:
        return self._node.store.height()

    async def wait_for_height(self, height: int) -> None:
        await self._node.wait_for_height(height)

    async def status(self) -> NodeStatus:
        node = self._node
        height = node.store.height()
        block = node.store.load_block(height) if height else None
        info = node.app.info()
        validator = None
        key = node.validator_key
        power = node.voting_power()
        if key is not None and power:
            validator = ValidatorInfo(address=key.id, pubkey=key.public_key, voting_power=power)
        return NodeStatus(
            chain_id=node.genesis.chain_id,
            node_id=node.node_key.id,
            latest_height=height,
            latest_block_hash=block.hash if block else b"",
            latest_app_hash=info.last_app_hash,
            latest_block_time_ns=block.header.time_ns if block else node.genesis.genesis_time_ns,
            catching_up=node.catching_up(),
            validator=validator,
        )

    async def block(self, height: int) -> Block | None:
        return self._node.store.load_block(height)

    async def commit(self, height: int) -> Commit | None:
        return self._node.store.load_commit(height)

    async def tx(self, hash_: bytes) -> TxRecord | None:
        record = self._node.store.tx(hash_)
        if record is None:
            return None
        return TxRecord(height=record.height, index=record.index, raw=record.raw,
                        result=record.result)

    async def broadcast_tx(self, raw: bytes, mode: BroadcastMode) -> BroadcastResult:
        h = tx_hash(raw)
        if mode == "async":
            if not self._node.submit_async(raw):
                return BroadcastResult(hash=h, code=ERR_MEMPOOL_FULL,
                                       log="the node's tx intake queue is full; retry later")
            return BroadcastResult(hash=h)
        [result] = self._node.submit_txs([raw])
        if result.code != OK or mode == "sync":
            return BroadcastResult(hash=h, code=result.code, log=result.log,
                                   codespace=result.codespace)
        with trio.move_on_after(self._commit_timeout_s):
            while True:
                record = self._node.store.tx(h)
                if record is not None:
                    return BroadcastResult(hash=h, height=record.height, result=record.result)
                await self._node.wait_for_height(self._node.store.height() + 1)
        return BroadcastResult(hash=h, log=f"not included within {self._commit_timeout_s} s; "
                                           "it may still be")

    async def query(self, path: str, params: Mapping[str, str], height: int | None
                    ) -> QueryResult:
        return self._node.app.query(path, dict(params), height=height)

    async def events(self, height: int) -> BlockEvents | None:
        stored = self._node.store.events(height)
        if stored is None:
            return None
        indexed = [IndexedEvent(tx_hash=None, event=e) for e in stored.block_events]
        for tx in stored.txs:
            indexed += [IndexedEvent(tx_hash=tx.hash, event=e) for e in tx.events]
        return BlockEvents(height=stored.height, block_hash=stored.block_hash,
                           time_ns=stored.time_ns, events=tuple(indexed))
