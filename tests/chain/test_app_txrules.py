"""The tx rules of the app (DESIGN.md section 4): canonical bytes, chain id, timeout window, no
replay while a tx hash is remembered, signer and signature; and how proposals are built and
judged (prepare_proposal, process_proposal)."""

from __future__ import annotations

import pytest

from chain.app import abci
from chain.app.errors import AppHashMismatch
from chain.types import MsgSend, Tx, TxBody, decode_tx, encode, sign_bytes, tx_hash
from tests.chain.app_builders import ALICE, BOB, CAROL, GONKA, Chain, signed_tx


def pay(amount=1, memo="", key=ALICE, to=BOB, **kw) -> bytes:
    msg = MsgSend(from_address=key.address, to_address=to.address, amount=amount)
    return signed_tx(msg, key=key, memo=memo, **kw)


def forged(raw: bytes) -> bytes:
    """The same tx with its signature's last byte changed."""
    tx = decode_tx(raw)
    sig = tx.signature[:-1] + bytes([tx.signature[-1] ^ 1])
    return encode(Tx(body=tx.body, pubkey=tx.pubkey, signature=sig))


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "state.db")
    yield c
    c.close()


def test_bytes_that_are_not_a_tx_are_a_decode_error(chain):
    result = chain.app.check_tx(b"\x92\x01\x02")
    assert result.code == abci.ERR_DECODE and "cannot decode Tx" in result.log


def test_a_tx_for_another_chain_is_refused_and_fails_in_a_block(chain):
    tx = pay(chain_id="other-chain")
    check = chain.app.check_tx(tx)
    assert check.code == abci.ERR_CHAIN_ID and "'other-chain'" in check.log
    assert chain.run([tx]).tx_results[0].code == abci.ERR_CHAIN_ID
    assert chain.balance(BOB) == 50 * GONKA


def test_the_timeout_window_is_from_the_next_height_to_max_tx_timeout_blocks_ahead(chain):
    # Given genesis allows 100 blocks ahead and the chain is at height 4 (next block 5),
    chain.run_until(4)
    # then a timeout of 4 has passed, 5 and 105 are inside the window, 106 is too far.
    passed = chain.app.check_tx(pay(timeout_height=4))
    assert passed.code == abci.ERR_TIMEOUT and "has passed" in passed.log
    assert chain.app.check_tx(pay(timeout_height=5, memo="a")).code == abci.OK
    assert chain.app.check_tx(pay(timeout_height=105, memo="b")).code == abci.OK
    far = chain.app.check_tx(pay(timeout_height=106))
    assert far.code == abci.ERR_TIMEOUT and "more than 100 blocks ahead" in far.log
    # A block applies the same rule.
    assert chain.run([pay(timeout_height=4, memo="c")]).tx_results[0].code == abci.ERR_TIMEOUT


def test_a_replay_is_refused_until_its_timeout_then_forgotten(chain):
    # Given a transfer with timeout_height 3, included in block 1,
    tx = pay(5, timeout_height=3)
    assert chain.run([tx]).tx_results[0].code == abci.OK
    seen = chain.query("auth/seen", hash=tx_hash(tx).hex())
    assert seen == {"hash": tx_hash(tx).hex(), "timeout_height": 3}
    # then the same bytes are refused as duplicates by check_tx and by blocks 2 and 3,
    assert chain.app.check_tx(tx).code == abci.ERR_DUPLICATE
    assert chain.run([tx]).tx_results[0].code == abci.ERR_DUPLICATE
    assert chain.run([tx]).tx_results[0].code == abci.ERR_DUPLICATE
    assert chain.balance(BOB) == 50 * GONKA + 5
    # and once height 4 starts the record is pruned; the timeout alone refuses the tx now.
    chain.run([])
    assert chain.app.query("auth/seen", {"hash": tx_hash(tx).hex()}).code == 3
    assert chain.app.check_tx(tx).code == abci.ERR_TIMEOUT


def test_the_same_tx_twice_in_one_block_runs_once(chain):
    tx = pay(5)
    results = chain.run([tx, tx]).tx_results
    assert [r.code for r in results] == [abci.OK, abci.ERR_DUPLICATE]
    assert chain.balance(BOB) == 50 * GONKA + 5


def test_a_bad_signature_is_refused_unless_the_caller_verified_it(chain):
    bad = forged(pay(5))
    result = chain.app.check_tx(bad)
    assert result.code == abci.ERR_SIGNATURE and ALICE.address in result.log
    # The mempool, having verified the batch itself, may say so and skip the check.
    assert chain.app.check_tx(bad, signature_verified=True).code == abci.OK


def test_a_message_signed_by_someone_else_is_refused(chain):
    # Given a send of Bob's coins in a tx that Alice signed,
    body = TxBody(chain_id=chain.genesis.chain_id, memo="", timeout_height=10,
                  messages=(MsgSend(from_address=BOB.address, to_address=ALICE.address,
                                    amount=1),))
    raw = encode(Tx(body=body, pubkey=ALICE.public_key, signature=ALICE.sign(sign_bytes(body))))
    # then check_tx refuses it even when told the signature was verified,
    result = chain.app.check_tx(raw, signature_verified=True)
    assert result.code == abci.ERR_SIGNATURE and "must be signed by " + BOB.address in result.log
    # and a block proposing it is rejected.
    assert chain.app.process_proposal(chain.block([raw])) is False


def test_process_proposal_rejects_bad_signatures_and_undecodable_txs_only(chain):
    good, poor = pay(5), pay(500 * GONKA, memo="more than Alice has")
    # A block of valid txs is accepted, even when one of them will fail to execute,
    assert chain.app.process_proposal(chain.block([good, poor])) is True
    # but one bad signature among them, or one undecodable tx, rejects the block;
    assert chain.app.process_proposal(chain.block([good, forged(pay(6)), poor])) is False
    assert chain.app.process_proposal(chain.block([good, b"\xc0"])) is False
    # so does a block built on another state, or for another height.
    assert chain.app.process_proposal(chain.block([good], app_hash=bytes(32))) is False
    later = chain.block([good])
    chain.run([])
    assert chain.app.process_proposal(later) is False


def test_a_block_claiming_another_app_hash_halts_the_node_naming_the_height(chain):
    chain.run([pay(1)])
    block = chain.block([], app_hash=bytes(32))
    with pytest.raises(AppHashMismatch, match="app hash mismatch at height 1") as e:
        chain.app.finalize_block(block)
    assert e.value.height == 1 and e.value.theirs == bytes(32)
    assert chain.height == 1


def test_prepare_proposal_keeps_order_and_drops_what_would_fail(chain):
    # Given Alice's (100 GNK) sends a1, a2 and big (99 GNK), then short (1 GNK + 1), and Bob's,
    a1, a2, b1 = pay(1, memo="a1"), pay(2, memo="a2"), pay(3, key=BOB, to=CAROL)
    big, short = pay(99 * GONKA, memo="big"), pay(GONKA + 1, memo="short")
    b2 = pay(2 * GONKA, key=BOB, to=CAROL, memo="b2")
    txs = [a1, b"junk", a2, a1, forged(pay(4)), pay(1, chain_id="x"), b1, big, short, b2]
    chosen = chain.app.prepare_proposal(txs, height=1, time_ns=0, max_bytes=10**6, max_txs=100)
    # then junk, the repeated a1, the forged and foreign txs and the overdraft are dropped.
    assert chosen == [a1, a2, b1, big, b2]
    # Limits: the count stops the list, and a tx that does not fit the bytes is skipped.
    assert chain.app.prepare_proposal(txs, height=1, time_ns=0, max_bytes=10**6,
                                      max_txs=2) == [a1, a2]
    big = pay(7, memo="x" * 200)
    fits = chain.app.prepare_proposal([big, a1], height=1, time_ns=0,
                                      max_bytes=len(a1) + 10, max_txs=10)
    assert fits == [a1]
    # Preparing changes nothing: the chosen txs still check and run.
    assert chain.app.check_tx(a1).code == abci.OK
    assert [r.code for r in chain.run(chosen).tx_results] == [abci.OK] * 5
