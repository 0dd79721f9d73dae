"""The block store: each height saved atomically with its seen commit and results, and read back
by height, by block hash, by tx hash and as events; gaps, rewrites and mismatches refused."""

from __future__ import annotations

import pytest

from chain.app.abci import Attribute, Event, FinalizeBlockResult, TxResult
from chain.store.blocks import BlockStore, BlockStoreError
from chain.types import BlockID, PartSetHeader, block_hash, encode, tx_hash
from tests.chain.builders import commit_for, make_block, send, signed


def bid(block) -> BlockID:
    return BlockID(hash=block_hash(block.header), parts=PartSetHeader(total=1, root=bytes(32)))


TX_A = encode(signed(send(amount=1)))
TX_B = encode(signed(send(amount=2)))
EV = Event(type="transfer", attributes=(Attribute("amount", "1"),))
RESULT_1 = FinalizeBlockResult(
    tx_results=(TxResult(events=(EV,)), TxResult(code=101, codespace="bank", log="poor")),
    events=(Event(type="proposal_status"),),
)


@pytest.fixture
def chain2():
    b1 = make_block(1, txs=[TX_A, TX_B])
    c1 = commit_for(1, bid(b1))
    b2 = make_block(2, txs=[], last_block_id=bid(b1), last_commit=c1)
    c2 = commit_for(2, bid(b2))
    return (b1, c1), (b2, c2)


@pytest.fixture
def store(tmp_path):
    s = BlockStore(tmp_path / "blocks.db")
    yield s
    s.close()


def test_saved_heights_read_back_by_height_hash_tx_and_events(tmp_path, store, chain2):
    (b1, c1), (b2, c2) = chain2
    # Given two saved heights,
    store.save(b1, c1, RESULT_1)
    store.save(b2, c2, FinalizeBlockResult(tx_results=()))
    store.close()
    # when the store is reopened,
    s = BlockStore(tmp_path / "blocks.db")
    # then blocks, commits and results come back as saved,
    assert (s.base_height(), s.height()) == (1, 2)
    assert s.load_block(1) == b1 and s.load_block(2) == b2
    assert s.load_block_by_hash(block_hash(b2.header)) == b2
    assert s.load_commit(1) == c1 and s.load_commit(2) == c2
    assert s.load_results(1) == RESULT_1
    # a tx is found by hash with its place and result,
    rec = s.tx(tx_hash(TX_B))
    assert (rec.height, rec.index, rec.raw, rec.result.code) == (1, 1, TX_B, 101)
    # and the events of a height list block events, then each tx's with its hash.
    ev = s.events(1)
    assert (ev.block_hash, ev.time_ns) == (block_hash(b1.header), b1.header.time_ns)
    assert ev.block_events == (Event(type="proposal_status"),)
    assert [(t.index, t.hash, t.code) for t in ev.txs] == [(0, tx_hash(TX_A), 0),
                                                           (1, tx_hash(TX_B), 101)]
    assert ev.txs[0].events == (EV,)
    s.close()


def test_what_was_never_stored_is_none(store):
    assert store.height() == 0 and store.base_height() == 0
    assert store.load_block(1) is None and store.load_commit(1) is None
    assert store.load_block_by_hash(bytes(32)) is None
    assert store.tx(bytes(32)) is None and store.events(1) is None


def test_gaps_rewrites_and_mismatches_are_refused(store, chain2):
    (b1, c1), (b2, c2) = chain2
    no_results = FinalizeBlockResult(tx_results=())
    # A commit for another block, or results that do not match the txs, are refused.
    with pytest.raises(BlockStoreError, match="commit"):
        store.save(b1, c2, RESULT_1)
    with pytest.raises(BlockStoreError, match="tx results"):
        store.save(b1, c1, no_results)
    store.save(b1, c1, RESULT_1)
    # Saving height 1 again (a rewrite) is refused, and the first save stays.
    with pytest.raises(BlockStoreError, match="last stored height is 1"):
        store.save(b1, c1, RESULT_1)
    assert store.load_block(1) == b1 and store.height() == 1
    # So is a gap.
    b3 = make_block(3, txs=[], last_block_id=bid(b2), last_commit=c2)
    with pytest.raises(BlockStoreError, match="cannot save height 3"):
        store.save(b3, commit_for(3, bid(b3)), no_results)
    assert store.height() == 1
