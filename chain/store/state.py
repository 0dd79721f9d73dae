"""The committed state of the application: one SQLite database (WAL mode) per node.

Layout (schema version 1):
    kv(key BLOB PRIMARY KEY, value BLOB NOT NULL)   every module's state, ordered by key bytes
    meta(name TEXT PRIMARY KEY, value BLOB)          bookkeeping outside the app hash:
        schema_version, chain_id, last_height, last_app_hash, last_time_ns

`StateStore` is a `KVReader` over the last committed version, and `commit` applies one block's
write set *and* the new height/app hash in a single SQLite transaction. A crash before that
transaction commits leaves the previous height in place, so the node replays the block; a crash
after it leaves the new one. There is no in-between, so re-applying a block is idempotent.

This module must never compute app hashes or interpret values (that is `chain.app`'s job), and
must never write outside `commit`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

import msgspec

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class StoreError(RuntimeError):
    """The database is not what this code expects (other schema, other chain, bad commit)."""


class CommittedInfo(msgspec.Struct, frozen=True):
    """Where the committed state stands: height 0 and an empty hash before init_chain."""

    chain_id: str
    height: int
    app_hash: bytes
    time_ns: int


class StateStore:
    """The SQLite state database. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly in `commit`, nowhere else.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode})")
        # FULL: a commit that returned is on disk, since the app hash was handed to consensus.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        version = self._meta("schema_version")
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                             (SCHEMA_VERSION.to_bytes(4, "big"),))
        elif int.from_bytes(version, "big") != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {int.from_bytes(version, 'big')}, "
                             f"this code reads version {SCHEMA_VERSION}")

    def _meta(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def info(self) -> CommittedInfo:
        with self._lock:
            height = self._meta("last_height")
            return CommittedInfo(
                chain_id=(self._meta("chain_id") or b"").decode(),
                height=0 if height is None else int.from_bytes(height, "big"),
                app_hash=self._meta("last_app_hash") or b"",
                time_ns=int.from_bytes(self._meta("last_time_ns") or b"", "big"),
            )

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def scan(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        with self._lock:
            if end is None:
                rows = self._db.execute(
                    "SELECT key, value FROM kv WHERE key >= ? ORDER BY key", (start,))
            else:
                rows = self._db.execute(
                    "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                    (start, end))
            return [(bytes(k), bytes(v)) for k, v in rows.fetchall()]

    def commit(self, writes: Mapping[bytes, bytes | None], *, chain_id: str, height: int,
               app_hash: bytes, time_ns: int) -> None:
        """Apply `writes` and record (height, app hash, time) in one SQLite transaction.

        `height` must be the next one (or 0 for the genesis state of an empty store).
        """
        with self._lock:
            current = self.info()
            expected = 0 if not current.app_hash else current.height + 1
            if height != expected:
                raise StoreError(f"commit of height {height} but the store expects {expected}")
            if current.chain_id and current.chain_id != chain_id:
                raise StoreError(f"store holds chain {current.chain_id!r}, not {chain_id!r}")
            sets = [(k, v) for k, v in writes.items() if v is not None]
            deletes = [(k,) for k, v in writes.items() if v is None]
            meta = [
                ("chain_id", chain_id.encode()),
                ("last_height", height.to_bytes(8, "big")),
                ("last_app_hash", app_hash),
                ("last_time_ns", time_ns.to_bytes(8, "big")),
            ]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", sets)
                self._db.executemany("DELETE FROM kv WHERE key = ?", deletes)
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
