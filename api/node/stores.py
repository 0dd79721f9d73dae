"""The API node's two small durable stores (SQLite, WAL, one file each under the state folder):

* `ReplayCache`: the inference ids this node has accepted, per role (transfer agent, executor),
  so that the same signed request is served once even across a restart (the reference kept
  them in memory only, quirk 5). An id older than the chain's request window can never be
  accepted again anyway (its timestamp is refused), so entries are pruned once their request
  time leaves the window.
* `PayloadStore`: what the executor served: the developer's exact request body and the
  response bytes it hashed (with the top-k logprobs the validators replay against), with the
  token counts, kept for the epoch of the inference and `keep_epochs` more; validators fetch
  them later (DESIGN.md section 5, "Inference records").

Methods are synchronous, short and thread-safe; this module never talks to the network.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import msgspec

from api.durable import open_durable

Role = Literal["transfer_agent", "executor"]


class ReplayCache:
    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS seen (
        inference_id BLOB NOT NULL,
        role TEXT NOT NULL,
        request_timestamp_ns INTEGER NOT NULL,
        PRIMARY KEY (inference_id, role));
    CREATE INDEX IF NOT EXISTS seen_by_time ON seen (request_timestamp_ns);
    """

    def __init__(self, path: Path | str) -> None:
        self._db = open_durable(path, self._SCHEMA)
        self._lock = threading.Lock()

    def add(self, inference_id: bytes, role: Role, request_timestamp_ns: int) -> bool:
        """Record the id for `role`; False if it was there already (a replay). Durable before
        it returns."""
        with self._lock:
            cursor = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)",
                                      (inference_id, role, request_timestamp_ns))
            return cursor.rowcount == 1

    def seen(self, inference_id: bytes, role: Role) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM seen WHERE inference_id = ? AND role = ?",
                                    (inference_id, role)).fetchone() is not None

    def prune(self, before_ns: int) -> int:
        """Forget ids whose request time is before `before_ns`; how many."""
        with self._lock:
            return self._db.execute("DELETE FROM seen WHERE request_timestamp_ns < ?",
                                    (before_ns,)).rowcount

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class StoredPayload(msgspec.Struct, frozen=True):
    inference_id: bytes
    epoch: int
    model: str
    request: bytes           # the developer's body, byte for byte (its BLAKE3 is prompt_hash)
    response: bytes          # the bytes whose BLAKE3 is response_hash
    streamed: bool
    prompt_tokens: int
    completion_tokens: int
    response_hash: bytes


class PayloadStore:
    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS payloads (
        inference_id BLOB PRIMARY KEY,
        epoch INTEGER NOT NULL,
        model TEXT NOT NULL,
        request BLOB NOT NULL,
        response BLOB NOT NULL,
        streamed INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        response_hash BLOB NOT NULL);
    CREATE INDEX IF NOT EXISTS payloads_by_epoch ON payloads (epoch);
    """

    def __init__(self, path: Path | str) -> None:
        self._db = open_durable(path, self._SCHEMA)
        self._lock = threading.Lock()

    def put(self, p: StoredPayload) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO payloads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (p.inference_id, p.epoch, p.model, p.request, p.response, int(p.streamed),
                 p.prompt_tokens, p.completion_tokens, p.response_hash))

    def get(self, inference_id: bytes) -> StoredPayload | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM payloads WHERE inference_id = ?",
                                   (inference_id,)).fetchone()
        if row is None:
            return None
        return StoredPayload(inference_id=row[0], epoch=row[1], model=row[2], request=row[3],
                             response=row[4], streamed=bool(row[5]), prompt_tokens=row[6],
                             completion_tokens=row[7], response_hash=row[8])

    def prune(self, current_epoch: int, keep_epochs: int) -> int:
        """Drop payloads of epochs before `current_epoch - keep_epochs`; how many."""
        with self._lock:
            return self._db.execute("DELETE FROM payloads WHERE epoch < ?",
                                    (current_epoch - keep_epochs,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
