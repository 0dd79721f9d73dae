"""The one way the API node opens its SQLite files (outbox, cursors, replay cache, payloads,
duties, nonces): WAL, `synchronous=FULL` (a write that returned is on disk even if the machine
loses power right after), autocommit unless the caller opens a transaction, usable from
`trio.to_thread` workers (callers serialise access with their own lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_durable(path: Path | str, schema: str) -> sqlite3.Connection:
    """Open (creating its folder and tables) the SQLite file at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db
