"""The block store: committed blocks, their commits, tx results and events (a second SQLite file).

Consensus writes it (`save`, once per height, in height order); the RPC and block sync read it.
Methods (all synchronous, thread-safe; `None` means "not stored"):

    save(block, commit, result)      store height h atomically: the block, the commit that
                                     finalized it (the seen commit), and `finalize_block`'s result
    load_block(h) -> Block | None
    load_block_by_hash(hash) -> Block | None
    load_commit(h) -> Commit | None  the commit that finalized height h
    load_results(h) -> FinalizeBlockResult | None
    tx(hash) -> TxRecord | None      (height, index, raw tx, TxResult) of an included tx
    events(h) -> BlockEvents | None  block events, then each tx's events with its hash
    height() -> int                  last stored height, 0 when empty
    base_height() -> int             lowest stored height, 0 when empty

Heights are contiguous from the base: `save` refuses a gap or a rewrite, since a rewritten
committed block would mean a fork. This module must never judge blocks (consensus does) nor
touch application state.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec

from chain.app.abci import Event, FinalizeBlockResult, TxResult
from chain.types.block import Block, block_hash, decode_block
from chain.types.codec import encode
from chain.types.commit import Commit, decode_commit
from chain.types.tx import tx_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, time_ns INTEGER NOT NULL,
    block BLOB NOT NULL, seen_commit BLOB NOT NULL, result BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    height INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, tx BLOB NOT NULL,
    result BLOB NOT NULL, PRIMARY KEY (height, idx));
CREATE INDEX IF NOT EXISTS txs_by_hash ON txs (hash);
"""


class BlockStoreError(ValueError):
    """A save that would break the store's rules (gap, rewrite, mismatched commit or results)."""


class TxRecord(msgspec.Struct, frozen=True):
    """An included tx: where it is, its raw bytes and what executing it did."""

    hash: bytes
    height: int
    index: int
    raw: bytes
    result: TxResult


class TxEvents(msgspec.Struct, frozen=True):
    index: int
    hash: bytes
    code: int
    events: tuple[Event, ...]


class BlockEvents(msgspec.Struct, frozen=True):
    """Everything a height emitted, in order: block-level events (begin/end block), then txs."""

    height: int
    block_hash: bytes
    time_ns: int
    block_events: tuple[Event, ...]
    txs: tuple[TxEvents, ...]


_result_decoder = msgspec.msgpack.Decoder(FinalizeBlockResult)
_tx_result_decoder = msgspec.msgpack.Decoder(TxResult)


class BlockStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def save(self, block: Block, commit: Commit, result: FinalizeBlockResult) -> None:
        """Store one committed height in one SQLite transaction."""
        h = block.header.height
        bhash = block_hash(block.header)
        if commit.height != h or commit.block_id.hash != bhash:
            raise BlockStoreError(f"height {h}: the commit is for height {commit.height}, "
                                  "block " + commit.block_id.hash.hex())
        if len(result.tx_results) != len(block.txs):
            raise BlockStoreError(f"height {h}: {len(result.tx_results)} tx results for "
                                  f"{len(block.txs)} txs")
        with self._lock:
            last = self.height()
            if last and h != last + 1:
                raise BlockStoreError(f"cannot save height {h}: the last stored height is {last}")
            txs = [(h, i, tx_hash(raw), raw, encode(r))
                   for i, (raw, r) in enumerate(zip(block.txs, result.tx_results, strict=True))]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                                 (h, bhash, block.header.time_ns, encode(block), encode(commit),
                                  encode(result)))
                self._db.executemany("INSERT INTO txs VALUES (?, ?, ?, ?, ?)", txs)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, arg: object) -> bytes | None:
        with self._lock:
            row = self._db.execute(sql, (arg,)).fetchone()
        return None if row is None else bytes(row[0])

    def load_block(self, height: int) -> Block | None:
        raw = self._one("SELECT block FROM blocks WHERE height = ?", height)
        return None if raw is None else decode_block(raw)

    def load_block_by_hash(self, hash_: bytes) -> Block | None:
        raw = self._one("SELECT block FROM blocks WHERE hash = ?", hash_)
        return None if raw is None else decode_block(raw)

    def load_commit(self, height: int) -> Commit | None:
        raw = self._one("SELECT seen_commit FROM blocks WHERE height = ?", height)
        return None if raw is None else decode_commit(raw)

    def load_results(self, height: int) -> FinalizeBlockResult | None:
        raw = self._one("SELECT result FROM blocks WHERE height = ?", height)
        return None if raw is None else _result_decoder.decode(raw)

    def tx(self, hash_: bytes) -> TxRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT height, idx, tx, result FROM txs WHERE hash = ? ORDER BY height LIMIT 1",
                (hash_,)).fetchone()
        if row is None:
            return None
        height, idx, raw, result = row
        return TxRecord(hash=hash_, height=height, index=idx, raw=bytes(raw),
                        result=_tx_result_decoder.decode(bytes(result)))

    def events(self, height: int) -> BlockEvents | None:
        with self._lock:
            row = self._db.execute("SELECT hash, time_ns, result FROM blocks WHERE height = ?",
                                   (height,)).fetchone()
            if row is None:
                return None
            rows = self._db.execute("SELECT idx, hash FROM txs WHERE height = ? ORDER BY idx",
                                    (height,)).fetchall()
        result = _result_decoder.decode(bytes(row[2]))
        txs = tuple(TxEvents(index=i, hash=bytes(hash_), code=r.code, events=r.events)
                    for (i, hash_), r in zip(rows, result.tx_results, strict=True))
        return BlockEvents(height=height, block_hash=bytes(row[0]), time_ns=row[1],
                           block_events=result.events, txs=txs)

    def height(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return row[0] or 0

    def base_height(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MIN(height) FROM blocks").fetchone()
        return row[0] or 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
