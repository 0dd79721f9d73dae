"""What the RPC server needs from a running chain node: the `NodeView` protocol.

The node implements `NodeView` over its block store, mempool, consensus state and application;
the RPC server (`chain.rpc.app`) is written against this protocol only, so it can be served and
tested with an in-memory fake (`chain.rpc.testing.MemoryNodeView`). The types here are domain
values (raw bytes, chain types); how they look in JSON is `chain.rpc.schema`'s business.

Contract the RPC relies on:
  * `latest_height()` never decreases, and every height from the first available one up to it
    has its block, commit and events readable.
  * `wait_for_height(h)` returns once `latest_height() >= h` (at once if it already is); it is
    cancellable and never times out by itself.
  * `broadcast_tx` owns the waiting of each mode, including the time limit of "commit".

Nothing here may do I/O; these are declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import msgspec

from chain.app.abci import OK, Event, QueryResult, TxResult
from chain.types.block import Block
from chain.types.commit import Commit

# async: queued for check_tx, no verdict yet; sync: after check_tx; commit: after inclusion in
# a committed block, or after the node's time limit (then `height` is None).
BroadcastMode = Literal["async", "sync", "commit"]
BROADCAST_MODES: tuple[BroadcastMode, ...] = ("async", "sync", "commit")


class ValidatorInfo(msgspec.Struct, frozen=True):
    """This node's validator identity, when it is one."""

    address: bytes  # 20-byte node id of the consensus key
    pubkey: bytes  # ed25519 consensus public key
    voting_power: int


class NodeStatus(msgspec.Struct, frozen=True):
    chain_id: str
    node_id: bytes
    latest_height: int  # 0 before the first block
    latest_block_hash: bytes  # empty before the first block
    latest_app_hash: bytes
    latest_block_time_ns: int
    catching_up: bool
    validator: ValidatorInfo | None = None


class TxRecord(msgspec.Struct, frozen=True):
    """A committed tx: where it is (height, index in the block), its bytes and its result."""

    height: int
    index: int
    raw: bytes
    result: TxResult


class BroadcastResult(msgspec.Struct, frozen=True):
    """The outcome of `broadcast_tx`.

    `code`/`log`/`codespace` are check_tx's verdict (OK for "async", which does not wait for
    it). For "commit", `height` and `result` say where the tx landed and what it did; both are
    None if the node's time limit passed first (the tx may still be included later).
    """

    hash: bytes
    code: int = OK
    log: str = ""
    codespace: str = ""
    height: int | None = None
    result: TxResult | None = None


class IndexedEvent(msgspec.Struct, frozen=True):
    """An event of a committed block; `tx_hash` names the tx that emitted it, None for the block."""

    tx_hash: bytes | None
    event: Event


class BlockEvents(msgspec.Struct, frozen=True):
    """Everything a committed height emitted, in the order the node executed it."""

    height: int
    block_hash: bytes
    time_ns: int
    events: tuple[IndexedEvent, ...] = ()


class NodeView(Protocol):
    """The node as the RPC sees it. Reads are async so the node may run them in a thread."""

    def latest_height(self) -> int:
        """The last committed height, 0 before the first block. Cheap: no I/O."""
        ...

    async def wait_for_height(self, height: int) -> None:
        """Return once `latest_height() >= height`."""
        ...

    async def status(self) -> NodeStatus: ...

    async def block(self, height: int) -> Block | None:
        """The committed block at `height`, None if unknown (not yet committed, or pruned)."""
        ...

    async def commit(self, height: int) -> Commit | None:
        """The commit that finalised the block at `height`, None if unknown."""
        ...

    async def tx(self, tx_hash: bytes) -> TxRecord | None:
        """A committed tx by hash, None if no committed block holds it."""
        ...

    async def broadcast_tx(self, raw: bytes, mode: BroadcastMode) -> BroadcastResult:
        """Hand `raw` (already known to decode as a Tx) to the mempool; see BroadcastResult."""
        ...

    async def query(self, path: str, params: Mapping[str, str], height: int | None
                    ) -> QueryResult:
        """The application's `query` on committed state (latest, or at `height`)."""
        ...

    async def events(self, height: int) -> BlockEvents | None:
        """What the committed block at `height` emitted, None if unknown."""
        ...
