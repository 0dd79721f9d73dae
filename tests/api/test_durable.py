"""api.durable: the WAL flush covers exactly the files written since the last one, forgets
closed files, and what was committed is there after the process's connection is gone."""

from __future__ import annotations

import sqlite3

from api import durable

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)"


async def test_a_flush_covers_the_files_written_since_the_last_one(tmp_path):
    a = durable.open_durable(tmp_path / "a.db", SCHEMA)
    b = durable.open_durable(tmp_path / "b.db", SCHEMA)
    await durable.flush_once()                       # whatever was pending before this test
    # Given a write to one file,
    a.execute("INSERT INTO t VALUES (1, 'x')")
    # then one flush covers it, and the next has nothing to do;
    assert await durable.flush_once() == 1
    assert await durable.flush_once() == 0
    # writes to both are both flushed;
    a.execute("INSERT INTO t VALUES (2, 'y')")
    b.execute("INSERT INTO t VALUES (1, 'z')")
    assert await durable.flush_once() == 2
    # a closed file is forgotten, not an error.
    a.close()
    b.execute("INSERT INTO t VALUES (2, 'w')")
    assert await durable.flush_once() == 1
    b.close()
    assert await durable.flush_once() == 0


async def test_a_committed_write_is_read_back_by_a_new_connection(tmp_path):
    # Given a write that returned, and its connection abandoned without a close (a crash),
    db = durable.open_durable(tmp_path / "c.db", SCHEMA)
    db.execute("INSERT INTO t VALUES (1, 'kept')")
    # then another connection (a restarted process) reads it.
    other = sqlite3.connect(tmp_path / "c.db")
    assert other.execute("SELECT v FROM t").fetchall() == [("kept",)]
    other.close()
    db.close()
