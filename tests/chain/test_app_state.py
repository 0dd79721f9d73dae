"""The app as a replicated state machine: identical app hashes on independent nodes fed the same
blocks (and different ones when a single write differs), restart from disk, recovery from a crash
between finalize_block and commit, genesis handling and the boundary's call-order rules."""

from __future__ import annotations

import pytest

from chain.app import abci
from chain.app.app import GonkaApp, NotInitialised
from chain.app.params.state import InvalidGenesisParams
from chain.types import MsgSend
from chain.types.codec import DecodeError
from tests.chain.app_builders import (
    ALICE,
    BOB,
    CAROL,
    GONKA,
    Chain,
    make_genesis,
    signed_tx,
)
from tests.chain.builders import VALIDATORS


def pay(amount: int, key=ALICE, to=BOB, memo: str = "") -> bytes:
    return signed_tx(MsgSend(from_address=key.address, to_address=to.address, amount=amount),
                     key=key, memo=memo)


BLOCKS = [
    [pay(5), pay(7, key=BOB, to=CAROL)],
    [],
    [pay(10**15, memo="fails"), pay(1, to=CAROL)],
    [pay(3, key=CAROL, to=ALICE)],
]


def run_all(chain: Chain, blocks=BLOCKS) -> list[bytes]:
    hashes = []
    for txs in blocks:
        chain.run(txs)
        hashes.append(chain.app.info().last_app_hash)
    return hashes


def test_two_nodes_fed_the_same_blocks_agree_on_every_app_hash(tmp_path):
    # Given two nodes with their own databases and the same genesis,
    one, two = Chain(tmp_path / "1.db"), Chain(tmp_path / "2.db")
    assert one.genesis_hash == two.genesis_hash
    hashes = set()
    for txs in BLOCKS:
        # when each is fed the same blocks, then results and app hashes are identical,
        assert one.run(txs) == two.run(txs)
        assert one.app.info() == two.app.info()
        hashes.add(one.app.info().last_app_hash)
    # and every height has its own hash, even the empty block.
    assert len(hashes) == len(BLOCKS)
    one.close(), two.close()


def test_one_different_write_gives_a_different_app_hash(tmp_path):
    # Given two nodes whose genesis differ by one ngonka in one balance,
    a = Chain(tmp_path / "a.db")
    b = Chain(tmp_path / "b.db", make_genesis({ALICE.address: 100 * GONKA,
                                               BOB.address: 50 * GONKA + 1}))
    # then their genesis app hashes differ,
    assert a.genesis_hash != b.genesis_hash
    # and two nodes from the same genesis diverge as soon as one block differs by one write.
    c, d = Chain(tmp_path / "c.db"), Chain(tmp_path / "d.db")
    c.run([pay(5)])
    d.run([pay(6)])
    assert c.app.info().last_app_hash != d.app.info().last_app_hash
    for x in (a, b, c, d):
        x.close()


def test_a_restarted_node_has_the_same_height_hash_and_state(tmp_path):
    # Given a node that committed four blocks and a reference that never stopped,
    reference = Chain(tmp_path / "ref.db")
    expected = run_all(reference)
    node = Chain(tmp_path / "node.db")
    run_all(node)
    info, balances = node.app.info(), [node.balance(k) for k in (ALICE, BOB, CAROL)]
    # when it is closed and reopened from disk,
    node.reopen()
    # then info, state and the replay records survived,
    assert node.app.info() == info and info.last_height == 4 and info.last_app_hash == expected[-1]
    assert [node.balance(k) for k in (ALICE, BOB, CAROL)] == balances
    assert node.app.check_tx(BLOCKS[0][0]).code == abci.ERR_DUPLICATE
    # and the next block gives the same app hash as on the reference.
    node.run([pay(2, memo="after restart")])
    reference.run([pay(2, memo="after restart")])
    assert node.app.info() == reference.app.info()
    node.close(), reference.close()


def test_a_crash_between_finalize_and_commit_is_recovered_by_replaying_the_block(tmp_path):
    reference = Chain(tmp_path / "ref.db")
    expected = run_all(reference)
    # Given a node that finalized block 4 but crashed before committing it,
    node = Chain(tmp_path / "node.db")
    run_all(node, BLOCKS[:3])
    node.app.finalize_block(node.block(BLOCKS[3]))
    node.reopen()
    # then on restart it stands at height 3, with nothing of block 4 applied,
    assert node.app.info().last_height == 3 and node.app.info().last_app_hash == expected[2]
    assert node.balance(CAROL) == 7 + 1
    # and replaying block 4 gives the app hash the reference computed.
    node.run(BLOCKS[3])
    assert node.app.info().last_app_hash == expected[3]
    assert node.balance(CAROL) == reference.balance(CAROL)
    node.close(), reference.close()


def test_finalizing_a_block_twice_before_commit_starts_over(tmp_path):
    # (consensus may hand the same height again after a round change; the last one counts)
    reference, node = Chain(tmp_path / "ref.db"), Chain(tmp_path / "node.db")
    node.app.finalize_block(node.block([pay(99)]))
    node.run([pay(5)])
    reference.run([pay(5)])
    assert node.app.info() == reference.app.info() and node.balance(BOB) == 50 * GONKA + 5
    node.close(), reference.close()


def test_init_chain_writes_genesis_and_returns_the_validator_set(tmp_path):
    genesis = make_genesis(powers=((ALICE.address, 10), (BOB.address, 5)))
    app = GonkaApp.in_home(tmp_path / "home")
    assert (tmp_path / "home" / "data" / "state.db").exists()
    assert app.info() == abci.AppInfo(last_height=0, last_app_hash=b"")
    result = app.init_chain(genesis)
    assert [(v.pubkey, v.power) for v in result.validators] == [
        (VALIDATORS[0].public_key, 10), (VALIDATORS[1].public_key, 5)]
    assert app.info() == abci.AppInfo(last_height=0, last_app_hash=result.app_hash)
    with pytest.raises(RuntimeError, match="already holds a chain"):
        app.init_chain(genesis)
    app.close()


def test_genesis_app_params_are_typed_and_checked(tmp_path):
    c = Chain(tmp_path / "ok.db", make_genesis(app_params={"gov": {"quorum_bps": 5000}}))
    assert c.query("params/gov")["quorum_bps"] == 5000
    assert c.query("params/gov")["threshold_bps"] == 5000  # default
    assert c.query("params/consensus")["max_tx_timeout_blocks"] == 100
    c.close()
    for i, bad in enumerate([{"nosuch": {}}, {"gov": {"quorum_bps": 10_001}},
                             {"gov": {"unknown_field": 1}}]):
        app = GonkaApp(tmp_path / f"bad{i}.db")
        with pytest.raises(InvalidGenesisParams):
            app.init_chain(make_genesis(app_params=bad))
        assert app.info().last_app_hash == b""
        app.close()
    app = GonkaApp(tmp_path / "novals.db")
    with pytest.raises(DecodeError, match="at least one validator"):
        app.init_chain(make_genesis(powers=()))
    app.close()


def test_the_call_order_is_enforced(tmp_path):
    empty = GonkaApp(tmp_path / "s.db")
    chain = Chain(tmp_path / "c.db")
    # Nothing runs before init_chain,
    assert empty.check_tx(pay(1)).code == abci.ERR_INTERNAL
    with pytest.raises(NotInitialised):
        empty.finalize_block(chain.block([]))
    # commit needs a finalized block,
    with pytest.raises(RuntimeError, match="commit without"):
        chain.app.commit()
    # and blocks come in height order.
    stale = chain.block([])
    chain.run([])
    chain.run([])
    with pytest.raises(ValueError, match="height 1, but the app's last committed height is 2"):
        chain.app.finalize_block(stale)
    empty.close(), chain.close()


def test_queries_answer_the_latest_height_only(tmp_path):
    chain = Chain(tmp_path / "s.db")
    chain.run([])
    info = chain.query("app/info")
    assert info["last_height"] == 1 and info["chain_id"] == chain.genesis.chain_id
    assert bytes.fromhex(info["last_app_hash"]) == chain.app.info().last_app_hash
    assert chain.app.query("bank/supply", {}, height=1).code == abci.OK
    old = chain.app.query("bank/supply", {}, height=0)
    assert old.code == 2 and "only the latest height (1)" in old.log
    unknown = chain.app.query("bank/nothing", {})
    assert unknown.code == 1 and "bank/supply" in unknown.log
    validators = chain.query("validators/set")
    assert [v["power"] for v in validators] == [10]
    chain.close()
