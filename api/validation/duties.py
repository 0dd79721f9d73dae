"""`DutyStore`: the validation worker's durable memory (SQLite, api.durable).

* `duties`: one row per (inference id, round) the worker decided to validate (round 0 = first
  round, 1 = revalidation ballot): `pending` until its MsgValidation is handed to the outbox,
  then `sent` with the outbox message id (or `skipped`: nothing may be sent any more). A duty
  is written before the block that announced it is marked processed, so a restart finds every
  duty it learned of; `sent` is written right after the outbox put, with no await between
  them, so a duty is handed over once (only a process killed between those two synchronous
  writes can hand it over twice, and the chain refuses the second first-round validation with
  905 AlreadyValidated; a second ballot just replaces the first).
* `claims`: one row per epoch whose rewards this host must claim, `pending` then `sent`.

Synchronous and short; never talks to the network.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import msgspec

from api.durable import open_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS duties (
    inference_id BLOB NOT NULL,
    revalidation INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    executor TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'skipped')),
    message_id INTEGER,
    similarity_ppm INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (inference_id, revalidation));
CREATE INDEX IF NOT EXISTS duties_by_state ON duties (state);
CREATE TABLE IF NOT EXISTS claims (
    epoch INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'skipped')),
    message_id INTEGER);
"""


class Duty(msgspec.Struct, frozen=True):
    inference_id: bytes
    revalidation: bool
    epoch: int
    executor: str
    state: Literal["pending", "sent", "skipped"]
    message_id: int | None = None
    similarity_ppm: int | None = None
    reason: str = ""


class DutyStore:
    def __init__(self, path: Path | str) -> None:
        self._db = open_durable(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- validations ------------------------------------------------------------------------------

    def add(self, inference_id: bytes, revalidation: bool, epoch: int, executor: str) -> bool:
        """Record a duty (pending); False if it was known already (pending or done)."""
        with self._lock:
            return self._db.execute(
                "INSERT OR IGNORE INTO duties (inference_id, revalidation, epoch, executor, "
                "state) VALUES (?, ?, ?, ?, 'pending')",
                (inference_id, int(revalidation), epoch, executor)).rowcount == 1

    def mark_sent(self, inference_id: bytes, revalidation: bool, message_id: int,
                  similarity_ppm: int, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE duties SET state = 'sent', message_id = ?, similarity_ppm = ?, "
                "reason = ? WHERE inference_id = ? AND revalidation = ?",
                (message_id, similarity_ppm, reason, inference_id, int(revalidation)))

    def mark_skipped(self, inference_id: bytes, revalidation: bool, reason: str) -> None:
        """Nothing to send any more (the vote resolved, the epoch ended)."""
        with self._lock:
            self._db.execute(
                "UPDATE duties SET state = 'skipped', reason = ? WHERE inference_id = ? AND "
                "revalidation = ?", (reason, inference_id, int(revalidation)))

    def get(self, inference_id: bytes, revalidation: bool) -> Duty | None:
        with self._lock:
            row = self._db.execute(
                "SELECT inference_id, revalidation, epoch, executor, state, message_id, "
                "similarity_ppm, reason FROM duties WHERE inference_id = ? AND revalidation = ?",
                (inference_id, int(revalidation))).fetchone()
        return None if row is None else _duty(row)

    def duties(self, state: str | None = None) -> list[Duty]:
        query = ("SELECT inference_id, revalidation, epoch, executor, state, message_id, "
                 "similarity_ppm, reason FROM duties")
        args: tuple = ()
        if state is not None:
            query += " WHERE state = ?"
            args = (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY rowid", args).fetchall()
        return [_duty(r) for r in rows]

    # -- claims -----------------------------------------------------------------------------------

    def add_claim(self, epoch: int) -> bool:
        with self._lock:
            return self._db.execute("INSERT OR IGNORE INTO claims VALUES (?, 'pending', NULL)",
                                    (epoch,)).rowcount == 1

    def claim_sent(self, epoch: int, message_id: int | None) -> None:
        with self._lock:
            self._db.execute("UPDATE claims SET state = 'sent', message_id = ? WHERE epoch = ?",
                             (message_id, epoch))

    def pending_claims(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT epoch FROM claims WHERE state = 'pending' ORDER BY epoch")]

    def claim_state(self, epoch: int) -> tuple[str, int | None] | None:
        with self._lock:
            row = self._db.execute("SELECT state, message_id FROM claims WHERE epoch = ?",
                                   (epoch,)).fetchone()
        return None if row is None else (row[0], row[1])


def _duty(row: tuple) -> Duty:
    return Duty(inference_id=row[0], revalidation=bool(row[1]), epoch=row[2], executor=row[3],
                state=row[4], message_id=row[5], similarity_ppm=row[6], reason=row[7])
