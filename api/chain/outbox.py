"""`Outbox`: the API node's durable queue of protocol messages waiting to reach the chain.

A message handed to `put` is committed to SQLite before `put` returns, so it survives a crash
of the process at once and a crash of the machine once flushed (api.durable: within 50 ms
while the node runs). The sender (`api.chain.sender.TxSender`)
then moves each message through its states:

    queued --assign--> sent --settle--> included | rejected
       ^                 |
       +----requeue------+      (tx expired unincluded, refused for a reason that is not the
                                 message's fault, or a batch to be split one message per tx)

A row in `sent` names its tx by hash; the signed tx bytes sit in the `txs` table until the tx
settles or is given up, so that after a restart the *same* tx is offered again (the chain refuses
a duplicate hash) instead of a fresh one that could execute the message twice.

Nothing is deleted behind the caller's back: settled rows stay queryable until the caller prunes
included rows older than a given age (`prune_included`); rejected rows are kept until someone has
looked at them (`prune_rejected`). Methods are synchronous and thread-safe (short SQLite
transactions, like the chain's stores). This module must never talk to the network.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import msgspec

from api.durable import open_durable
from chain.types.codec import decode, encode
from chain.types.msgs import MSG_TYPES, BaseMsg, Msg, msg_tag

MessageState = Literal["queued", "sent", "included", "rejected"]
SETTLED: frozenset[str] = frozenset({"included", "rejected"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL,
    msg BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'included', 'rejected')),
    solo INTEGER NOT NULL DEFAULT 0,
    tx_hash BLOB,
    timeout_height INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    result_code INTEGER,
    height INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE INDEX IF NOT EXISTS outbox_by_tx ON outbox (tx_hash);
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY,
    raw BLOB NOT NULL,
    timeout_height INTEGER NOT NULL,
    created_ns INTEGER NOT NULL);
"""

_COLUMNS = ("id, tag, msg, state, solo, tx_hash, timeout_height, attempts, result_code, height, "
            "last_error, created_ns, updated_ns")


class OutboxError(ValueError):
    """A call that breaks the outbox's rules (unknown message, wrong state for the move)."""


class OutboxEntry(msgspec.Struct, frozen=True):
    """One message and where it stands. `solo` means it must go in a tx of its own (a batch
    holding it was refused); `result_code`/`height` come from the chain once it settled."""

    id: int
    tag: str
    msg: Msg
    state: MessageState
    solo: bool
    tx_hash: bytes | None
    timeout_height: int | None
    attempts: int
    result_code: int | None
    height: int | None
    last_error: str
    created_ns: int
    updated_ns: int

    @property
    def settled(self) -> bool:
        return self.state in SETTLED


class PendingTx(msgspec.Struct, frozen=True):
    """A signed tx that messages were assigned to and that has not settled yet."""

    hash: bytes
    raw: bytes
    timeout_height: int
    message_ids: tuple[int, ...]


def _now_ns() -> int:
    return time.time_ns()


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # Durable as api.durable says: a put that returned survives the process's crash.
        self._db = open_durable(self.path, _SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------

    def put(self, msg: BaseMsg) -> int:
        """Queue `msg` durably; its id, which `get` and the sender's results name it by."""
        return self.put_many([msg])[0]

    def put_many(self, msgs: Iterable[BaseMsg]) -> list[int]:
        """Queue several messages in one durable transaction (all or none), in order."""
        rows = []
        for msg in msgs:
            tag = msg_tag(type(msg))
            if MSG_TYPES.get(tag) is not type(msg):
                raise OutboxError(f"{type(msg).__name__} is not a registered chain message")
            raw = encode(msg)
            decode(raw, Msg)  # what the chain would refuse to decode is refused here, now
            rows.append((tag, raw))
        now = _now_ns()
        with self._lock, self._transaction():
            return [self._db.execute(
                "INSERT INTO outbox (tag, msg, state, created_ns, updated_ns) "
                "VALUES (?, ?, 'queued', ?, ?)", (tag, raw, now, now)).lastrowid
                    for tag, raw in rows]

    def assign(self, ids: Sequence[int], tx_hash: bytes, raw: bytes, timeout_height: int) -> None:
        """Record that queued messages `ids` travel in the signed tx `raw`: they become `sent`.
        Done before the tx is broadcast, so a crash right after cannot lead to a second tx."""
        now = _now_ns()
        with self._lock, self._transaction():
            self._require_state(ids, "queued")
            self._db.execute("INSERT INTO txs VALUES (?, ?, ?, ?)",
                             (tx_hash, raw, timeout_height, now))
            self._db.executemany(
                "UPDATE outbox SET state = 'sent', tx_hash = ?, timeout_height = ?, "
                "attempts = attempts + 1, updated_ns = ? WHERE id = ?",
                [(tx_hash, timeout_height, now, i) for i in ids])

    def requeue_tx(self, tx_hash: bytes, error: str, *, solo: bool = False) -> list[int]:
        """Give up tx `tx_hash` (it can never be included): its messages are queued again for a
        fresh tx, each in a tx of its own if `solo`. Returns their ids."""
        now = _now_ns()
        with self._lock, self._transaction():
            ids = self._ids_of_tx(tx_hash)
            self._db.execute(
                "UPDATE outbox SET state = 'queued', tx_hash = NULL, timeout_height = NULL, "
                "solo = solo OR ?, last_error = ?, updated_ns = ? "
                "WHERE tx_hash = ? AND state = 'sent'", (int(solo), error, now, tx_hash))
            self._db.execute("DELETE FROM txs WHERE hash = ?", (tx_hash,))
            return ids

    def settle_tx(self, tx_hash: bytes, state: Literal["included", "rejected"], *, code: int,
                  log: str, height: int | None) -> list[int]:
        """The chain's final word on tx `tx_hash` for all of its messages. Returns their ids."""
        if state not in SETTLED:
            raise OutboxError(f"{state!r} is not a settled state")
        now = _now_ns()
        with self._lock, self._transaction():
            ids = self._ids_of_tx(tx_hash)
            self._db.execute(
                "UPDATE outbox SET state = ?, result_code = ?, last_error = ?, height = ?, "
                "updated_ns = ? WHERE tx_hash = ? AND state = 'sent'",
                (state, code, log, height, now, tx_hash))
            self._db.execute("DELETE FROM txs WHERE hash = ?", (tx_hash,))
            return ids

    def make_solo(self, ids: Sequence[int], error: str) -> None:
        """Queued messages `ids` will each go in a tx of their own (their batch was refused)."""
        with self._lock, self._transaction():
            self._require_state(ids, "queued")
            self._db.executemany(
                "UPDATE outbox SET solo = 1, last_error = ?, updated_ns = ? WHERE id = ?",
                [(error, _now_ns(), i) for i in ids])

    def reject_queued(self, message_id: int, error: str, *, code: int) -> None:
        """A queued message that can never make a valid tx (refused before it was sent)."""
        with self._lock, self._transaction():
            self._require_state([message_id], "queued")
            self._db.execute(
                "UPDATE outbox SET state = 'rejected', result_code = ?, last_error = ?, "
                "updated_ns = ? WHERE id = ?", (code, error, _now_ns(), message_id))

    def note_error(self, tx_hash: bytes, error: str) -> None:
        """Record why the last attempt at tx `tx_hash` did not get through (it stays sent)."""
        with self._lock:
            self._db.execute("UPDATE outbox SET last_error = ?, updated_ns = ? "
                             "WHERE tx_hash = ? AND state = 'sent'", (error, _now_ns(), tx_hash))

    def prune_included(self, older_than_ns: int) -> int:
        """Delete included messages last updated before `older_than_ns` (wall clock, ns);
        returns how many. Queued, sent and rejected messages are never pruned by this."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM outbox WHERE state = 'included' AND updated_ns < ?",
                (older_than_ns,)).rowcount

    def prune_rejected(self, older_than_ns: int) -> int:
        """Delete rejected messages last updated before `older_than_ns`; returns how many."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM outbox WHERE state = 'rejected' AND updated_ns < ?",
                (older_than_ns,)).rowcount

    # -- reads ----------------------------------------------------------------------------------

    def get(self, message_id: int) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?",
                                   (message_id,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self, state: MessageState | None = None, *, limit: int = 1000
                ) -> list[OutboxEntry]:
        """Messages in id order, all or those in `state`."""
        with self._lock:
            if state is None:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY id LIMIT ?",
                                        (limit,)).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE state = ? ORDER BY id LIMIT ?",
                    (state, limit)).fetchall()
        return [_entry(r) for r in rows]

    def queued(self, limit: int) -> list[OutboxEntry]:
        """The oldest queued messages, in the order they were put."""
        return self.entries("queued", limit=limit)

    def pending_txs(self) -> list[PendingTx]:
        """Every tx with messages in `sent`, oldest first."""
        with self._lock:
            txs = self._db.execute(
                "SELECT hash, raw, timeout_height FROM txs ORDER BY created_ns, hash").fetchall()
            out = []
            for hash_, raw, timeout in txs:
                ids = tuple(self._ids_of_tx(hash_))
                out.append(PendingTx(hash_, raw, timeout, ids))
        return out

    def counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            found = dict(rows.fetchall())
        return {s: found.get(s, 0) for s in ("queued", "sent", "included", "rejected")}

    # -- internals ------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _ids_of_tx(self, tx_hash: bytes) -> list[int]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM outbox WHERE tx_hash = ? AND state = 'sent' ORDER BY id", (tx_hash,))]

    def _require_state(self, ids: Sequence[int], state: MessageState) -> None:
        if not ids:
            raise OutboxError("no message ids given")
        marks = ",".join("?" * len(ids))
        found = dict(self._db.execute(
            f"SELECT id, state FROM outbox WHERE id IN ({marks})", list(ids)).fetchall())
        for i in ids:
            if found.get(i) != state:
                raise OutboxError(f"message {i} is {found.get(i, 'unknown')}, not {state}")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _entry(row: tuple) -> OutboxEntry:
    (id_, tag, raw, state, solo, tx_hash, timeout, attempts, code, height, error, created,
     updated) = row
    return OutboxEntry(id=id_, tag=tag, msg=decode(raw, Msg), state=state, solo=bool(solo),
                       tx_hash=tx_hash, timeout_height=timeout, attempts=attempts,
                       result_code=code, height=height, last_error=error, created_ns=created,
                       updated_ns=updated)
