"""A tiny deterministic key-value Application for consensus tests and the simulation.

A tx is `b"key=value"` (sets a key) or `b"val:<64 hex pubkey>=<power>"` (a validator update).
The app hash after a block is BLAKE3 of the canonical encoding of the sorted state. Committed
state lives in a `KVDisk`, which survives a simulated crash; what was finalized but not committed
is lost with the `KVApp` object, as a real application loses an uncommitted SQLite transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.app.abci import (
    OK,
    AppInfo,
    CheckTxResult,
    Event,
    FinalizeBlockResult,
    InitChainResult,
    QueryResult,
    TxResult,
    ValidatorUpdate,
)
from chain.crypto.hashing import blake3_256
from chain.types.block import Block
from chain.types.codec import encode
from chain.types.genesis import Genesis

ERR_BAD_TX = 10


def state_hash(state: dict[str, str]) -> bytes:
    return blake3_256(encode(sorted(state.items())))


@dataclass
class KVDisk:
    """The application's durable state: what `commit` made permanent."""

    height: int = 0
    app_hash: bytes = b""
    state: dict[str, str] = field(default_factory=dict)


def parse(tx: bytes) -> tuple[str, str] | None:
    try:
        text = tx.decode("ascii")
    except UnicodeDecodeError:
        return None
    key, sep, value = text.partition("=")
    if not sep or not key:
        return None
    if key.startswith("val:"):
        try:
            if len(bytes.fromhex(key[4:])) != 32 or int(value) < 0:
                return None
        except ValueError:
            return None
    return key, value


class KVApp:
    def __init__(self, disk: KVDisk | None = None) -> None:
        self.disk = disk if disk is not None else KVDisk()
        self._pending: tuple[int, dict[str, str]] | None = None
        self.processed: list[bytes] = []  # hashes of the blocks process_proposal judged

    def info(self) -> AppInfo:
        return AppInfo(last_height=self.disk.height, last_app_hash=self.disk.app_hash)

    def init_chain(self, genesis: Genesis) -> InitChainResult:
        self.disk.state = {}
        self.disk.app_hash = state_hash({})
        return InitChainResult(app_hash=self.disk.app_hash, validators=())

    def check_tx(self, raw: bytes, *, recheck: bool = False,
                 signature_verified: bool = False) -> CheckTxResult:
        return CheckTxResult(code=OK if parse(raw) else ERR_BAD_TX)

    def prepare_proposal(self, txs: Sequence[bytes], *, height: int, time_ns: int,
                         max_bytes: int, max_txs: int) -> list[bytes]:
        out, used = [], 0
        for tx in txs:
            if parse(tx) is None or len(out) >= max_txs or used + len(tx) + 5 > max_bytes:
                continue
            out.append(tx)
            used += len(tx) + 5
        return out

    def process_proposal(self, block: Block) -> bool:
        self.processed.append(block.hash)
        return all(parse(tx) is not None for tx in block.txs)

    def finalize_block(self, block: Block) -> FinalizeBlockResult:
        state = dict(self.disk.state)
        results, updates = [], []
        for tx in block.txs:
            kv = parse(tx)
            if kv is None:
                results.append(TxResult(code=ERR_BAD_TX, log="not key=value"))
                continue
            key, value = kv
            state[key] = value
            if key.startswith("val:"):
                updates.append(ValidatorUpdate(pubkey=bytes.fromhex(key[4:]), power=int(value)))
            results.append(TxResult(events=(Event(type="set"),)))
        self._pending = (block.header.height, state)
        return FinalizeBlockResult(tx_results=tuple(results), validator_updates=tuple(updates))

    def commit(self) -> bytes:
        assert self._pending is not None, "commit without finalize_block"
        height, state = self._pending
        self._pending = None
        self.disk.height, self.disk.state = height, state
        self.disk.app_hash = state_hash(state)
        return self.disk.app_hash

    def query(self, path: str, params: dict[str, str], *, height: int | None = None
              ) -> QueryResult:
        value = self.disk.state.get(params.get("key", ""))
        return QueryResult(value=encode(value), height=self.disk.height)


class ListMempool:
    """A TxSource: txs waiting in arrival order; committed ones are dropped by `committed`."""

    def __init__(self) -> None:
        self.txs: list[bytes] = []

    def add(self, tx: bytes) -> None:
        if tx not in self.txs:
            self.txs.append(tx)

    def reap(self, max_bytes: int, max_txs: int) -> list[bytes]:
        return list(self.txs[:max_txs])

    def committed(self, block: Block, *_: object) -> None:
        done = set(block.txs)
        self.txs = [t for t in self.txs if t not in done]
