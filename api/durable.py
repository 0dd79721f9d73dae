"""The one way the API node opens its SQLite files (outbox, cursors, replay cache, payloads,
duties, nonces), and how their writes reach the disk.

Files are in WAL mode with `synchronous=NORMAL`, autocommit unless the caller opens a
transaction, usable from `trio.to_thread` workers (callers serialise access with their own
lock). What a returned write survives:

- a crash of the process (killed, out of memory, a bug), at once: the commit is in the WAL file,
  which the operating system holds whatever happens to the process;
- a power loss or a crash of the machine, once the WAL has been fsynced: `flush_wal_files`
  (run by `serve_api` every `FLUSH_INTERVAL_S`, in a worker thread) does it for every file
  written since its last round, and SQLite itself at each checkpoint and when the file is
  closed.

Why not `synchronous=FULL` (an fsync in every commit): a busy API node commits hundreds of
times a second (each message queued, each replay-cache entry, payload and duty), and every
fsync stalled its one event loop for a millisecond or more: `gonka bench api` served 95
requests/s that way against 136/s with the fsyncs batched here. The price is that a power loss
may take back the last `FLUSH_INTERVAL_S` of writes, never more, and never on a process crash.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import trio

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05

# Every file opened here, by path: its connection and its change count at the last flush.
_opened: dict[str, tuple[sqlite3.Connection, int]] = {}


def open_durable(path: Path | str, schema: str) -> sqlite3.Connection:
    """Open (creating its folder and tables) the SQLite file at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    _opened[str(path.resolve())] = (db, -1)
    return db


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL now (checkpointed and removed): nothing waits for the disk
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def flush_once() -> int:
    """fsync the WAL of every open file written since its last flush; how many were."""
    flushed = 0
    for path, (db, seen) in list(_opened.items()):
        try:
            changes = db.total_changes
        except sqlite3.ProgrammingError:  # closed by its owner
            if _opened.get(path, (None,))[0] is db:
                del _opened[path]
            continue
        if changes == seen:
            continue
        # The count is read before the fsync: a write that lands during it is flushed next time.
        await trio.to_thread.run_sync(_fsync, f"{path}-wal")
        if _opened.get(path, (None,))[0] is db:
            _opened[path] = (db, changes)
        flushed += 1
    return flushed


async def flush_wal_files(interval_s: float = FLUSH_INTERVAL_S, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Flush every `interval_s` until cancelled. (A file closed cleanly needs no last flush:
    SQLite checkpoints a WAL file, with an fsync, when its last connection closes.)"""
    task_status.started()
    while True:
        await trio.sleep(interval_s)  # the flush cadence, not a wait for a state
        try:
            await flush_once()
        except OSError as e:
            log.error("flushing the API node's SQLite files failed: %s", e)
