"""The SQLite state store: WAL mode, one transaction per commit (writes and height together),
persistence across reopen, and refusal of out-of-order or foreign commits."""

from __future__ import annotations

import sqlite3

import pytest

from chain.store.state import StateStore, StoreError

H0, H1 = bytes([1]) * 32, bytes([2]) * 32


@pytest.fixture
def store(tmp_path):
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def test_the_database_is_in_wal_mode(store):
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


def test_an_empty_store_is_at_height_zero_with_no_app_hash(store):
    info = store.info()
    assert (info.height, info.app_hash, info.chain_id) == (0, b"", "")


def test_commits_persist_writes_and_height_across_a_reopen(tmp_path, store):
    # Given a genesis commit and a block commit that deletes one key,
    store.commit({b"a": b"1", b"b": b"2"}, chain_id="c", height=0, app_hash=H0, time_ns=5)
    store.commit({b"a": None, b"c": b"3"}, chain_id="c", height=1, app_hash=H1, time_ns=6)
    store.close()
    # when the store is reopened,
    again = StateStore(tmp_path / "state.db")
    # then it holds the latest values and the last height, hash and time.
    assert again.get(b"a") is None and again.get(b"b") == b"2" and again.get(b"c") == b"3"
    assert again.scan(b"", None) == [(b"b", b"2"), (b"c", b"3")]
    info = again.info()
    assert (info.chain_id, info.height, info.app_hash, info.time_ns) == ("c", 1, H1, 6)
    again.close()


def test_a_commit_out_of_order_or_for_another_chain_is_refused(store):
    store.commit({}, chain_id="c", height=0, app_hash=H0, time_ns=0)
    with pytest.raises(StoreError, match="expects 1"):
        store.commit({b"x": b"1"}, chain_id="c", height=2, app_hash=H1, time_ns=0)
    with pytest.raises(StoreError, match="chain"):
        store.commit({b"x": b"1"}, chain_id="other", height=1, app_hash=H1, time_ns=0)
    assert store.get(b"x") is None and store.info().height == 0


def test_a_commit_that_fails_midway_writes_nothing(store):
    store.commit({b"a": b"1"}, chain_id="c", height=0, app_hash=H0, time_ns=0)
    # Given writes of which one cannot be stored (not bytes),
    bad = {b"a": b"2", b"b": b"2", b"c": object()}
    # when committing them fails,
    with pytest.raises(sqlite3.Error):
        store.commit(bad, chain_id="c", height=1, app_hash=H1, time_ns=0)  # type: ignore[arg-type]
    # then neither the good writes nor the new height were kept.
    assert store.get(b"a") == b"1" and store.get(b"b") is None
    assert store.info().height == 0 and store.info().app_hash == H0
