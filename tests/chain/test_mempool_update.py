"""Mempool after each block: committed txs leave, expired txs leave, the rest are re-checked;
and what the proposer reaps."""

from __future__ import annotations

import pytest

from chain.app.abci import ERR_DUPLICATE, OK, CheckTxResult
from chain.mempool import Mempool
from chain.types import tx_hash
from tests.chain.builders import ALICE, BOB, CAROL
from tests.chain.test_mempool_admission import FakeApp, raw_tx


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


def test_update_removes_committed_and_expired_and_rechecks_the_rest(app):
    # Given a pool with a tx a block will commit, one expiring at height 3 and two others
    committed = raw_tx(ALICE, 1)
    expiring = raw_tx(BOB, 1, timeout_height=3)
    kept = [raw_tx(CAROL, 1), raw_tx(ALICE, 2)]
    pool = Mempool(app, height=2)
    pool.add_batch([committed, expiring, *kept])
    app.calls.clear()

    # When block 3 commits the first tx
    result = pool.update(3, [committed])

    # Then the committed and the expired txs are gone, the others re-checked (marked as such,
    # signatures not redone), and the pool's accounting follows
    assert result.committed == (tx_hash(committed),)
    assert result.expired == (tx_hash(expiring),)
    assert result.invalid == ()
    assert app.calls == [(tx_hash(r), True, True) for r in kept]
    assert list(pool) == kept
    assert pool.size_bytes == sum(len(r) for r in kept)
    assert pool.sender_count(BOB.address) == 0
    assert pool.height == 3
    # and the committed tx cannot come back while it could still be included
    assert pool.add_batch([committed])[0].code == ERR_DUPLICATE


def test_recheck_drops_txs_the_app_now_rejects(app):
    # Given two waiting txs, one of which the block's effects make invalid (funds spent)
    spent, fine = raw_tx(ALICE, 1), raw_tx(BOB, 1)
    pool = Mempool(app)
    pool.add_batch([spent, fine])
    verdict = CheckTxResult(code=101, log="insufficient funds", codespace="bank")
    app.verdicts[tx_hash(spent)] = verdict

    # When a block commits something else
    result = pool.update(1, [raw_tx(CAROL, 9)])

    # Then the now-invalid tx is evicted with the app's verdict, the other stays
    assert result.invalid == ((tx_hash(spent), verdict),)
    assert result.committed == ()
    assert list(pool) == [fine]
    assert pool.sender_count(ALICE.address) == 0


def test_recheck_can_be_switched_off(app):
    # Given a pool that does not re-check
    pool = Mempool(app, recheck=False)
    pool.add_batch([raw_tx(ALICE, 1)])
    app.calls.clear()

    # When a block commits
    pool.update(1, [])

    # Then the app is not asked again
    assert app.calls == []
    assert len(pool) == 1


def test_freed_quota_and_room_can_be_used_again(app):
    # Given a full pool (one tx) and a sender at quota
    first = raw_tx(ALICE, 1)
    pool = Mempool(app, max_txs=1, max_per_sender=1)
    pool.add_batch([first])
    assert pool.add_batch([raw_tx(ALICE, 2)])[0].code != OK

    # When a block commits the waiting tx
    pool.update(1, [first])

    # Then the sender's next tx fits again
    assert pool.add_batch([raw_tx(ALICE, 2)])[0].code == OK


def test_update_must_move_forward(app):
    # Given a pool at height 4
    pool = Mempool(app, height=4)

    # When asked to update to the same height
    # Then it refuses: a block is applied once, in height order
    with pytest.raises(ValueError, match="height 4"):
        pool.update(4, [])


def test_reap_keeps_arrival_order_and_limits(app):
    # Given five waiting txs, the third much larger than the rest
    raws = [raw_tx(ALICE, 1), raw_tx(BOB, 1), raw_tx(CAROL, 1, memo="y" * 200),
            raw_tx(ALICE, 2), raw_tx(BOB, 2)]
    pool = Mempool(app)
    pool.add_batch(raws)
    small = len(raws[0])

    # When the proposer reaps with and without limits
    # Then it gets arrival order; a tx that does not fit the bytes left is skipped, not a stop
    assert pool.reap() == raws
    assert pool.reap(max_txs=2) == raws[:2]
    assert pool.reap(max_bytes=3 * small + 5) == [raws[0], raws[1], raws[3]]
    assert pool.reap(max_bytes=0) == []
    assert pool.reap(max_bytes=10 * small, max_txs=4) == raws[:4]
    # and reaping removes nothing
    assert len(pool) == 5


def test_committed_memory_is_bounded(app):
    # Given a pool that remembers at most one committed hash
    a, b = raw_tx(ALICE, 1, timeout_height=50), raw_tx(BOB, 1, timeout_height=60)
    pool = Mempool(app, committed_cache_size=1)

    # When a block commits two txs
    pool.update(1, [a, b])

    # Then the one closest to expiry is forgotten (the app's replay check still guards it)
    results = pool.add_batch([a, b])
    assert [r.code for r in results] == [OK, ERR_DUPLICATE]
