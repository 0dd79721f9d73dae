"""Mempool admission scenarios: real signed txs, a fake application that records what it is asked.

`FakeApp` and `raw_tx` are imported by the other mempool test files too.
"""

from __future__ import annotations

import pytest

import native
from chain.app.abci import (
    ERR_DECODE,
    ERR_DUPLICATE,
    ERR_INTERNAL,
    ERR_MEMPOOL_FULL,
    ERR_SENDER_QUOTA,
    ERR_SIGNATURE,
    ERR_TIMEOUT,
    ERR_TOO_LARGE,
    OK,
    CheckTxResult,
)
from chain.crypto import secp256k1
from chain.mempool import Mempool
from chain.types import Tx, decode_tx, encode, sign_bytes, tx_hash
from tests.chain.builders import ALICE, BOB, CAROL, body, send, signed


def raw_tx(key: secp256k1.PrivateKey, n: int, *, timeout_height: int = 100,
           memo: str | None = None) -> bytes:
    """A distinct, validly signed tx from `key`: a transfer whose memo carries `n`."""
    to = CAROL if key is BOB else BOB
    tx = signed(send(frm=key, to=to), key=key, memo=memo if memo is not None else f"tx-{n}",
                timeout_height=timeout_height)
    return encode(tx)


class FakeApp:
    """Accepts every tx unless told otherwise; records (hash, recheck, signature_verified)."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bool, bool]] = []
        # Verdicts by tx hash, for admission and re-check alike.
        self.verdicts: dict[bytes, CheckTxResult] = {}
        self.raises: set[bytes] = set()

    def check_tx(self, raw: bytes, *, recheck: bool = False,
                 signature_verified: bool = False) -> CheckTxResult:
        h = tx_hash(raw)
        self.calls.append((h, recheck, signature_verified))
        if h in self.raises:
            raise RuntimeError("app bug")
        if h in self.verdicts:
            return self.verdicts[h]
        tx = decode_tx(raw)
        return CheckTxResult(sender=tx.signer, timeout_height=tx.body.timeout_height)


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def verify_calls(monkeypatch) -> list[int]:
    """Sizes of the batches handed to native.verify_batch_secp256k1, call by call."""
    calls: list[int] = []
    real = native.verify_batch_secp256k1

    def counting(pubkeys, msgs, sigs):
        calls.append(len(pubkeys))
        return real(pubkeys, msgs, sigs)

    monkeypatch.setattr(native, "verify_batch_secp256k1", counting)
    return calls


def test_valid_batch_is_admitted_in_order_with_one_signature_batch(app, verify_calls):
    # Given txs from three senders
    raws = [raw_tx(ALICE, 1), raw_tx(BOB, 1), raw_tx(CAROL, 1), raw_tx(ALICE, 2)]
    pool = Mempool(app)

    # When the batch is added
    results = pool.add_batch(raws)

    # Then every tx is admitted, signatures went through one batch call, the app was asked once
    # per tx with the signature marked verified, and the pool keeps arrival order
    assert [r.code for r in results] == [OK] * 4
    assert [r.hash for r in results] == [tx_hash(r) for r in raws]
    assert [r.sender for r in results] == [ALICE.address, BOB.address, CAROL.address,
                                           ALICE.address]
    assert verify_calls == [4]
    assert app.calls == [(tx_hash(r), False, True) for r in raws]
    assert len(pool) == 4
    assert pool.size_bytes == sum(len(r) for r in raws)
    assert all(pool.contains(tx_hash(r)) for r in raws)
    assert list(pool) == raws
    assert pool.sender_count(ALICE.address) == 2


def test_bad_signature_among_many_is_rejected_alone_and_remembered(app, verify_calls):
    # Given a batch where one tx carries a signature over another body
    good = [raw_tx(ALICE, i) for i in range(5)]
    other = signed(memo="other")
    forged = Tx(body=body(memo="forged"), pubkey=ALICE.public_key, signature=other.signature)
    batch = good[:2] + [encode(forged)] + good[2:]
    pool = Mempool(app)

    # When the batch is added
    results = pool.add_batch(batch)

    # Then only the forged tx is rejected, for its signature, and the app never saw it
    assert [r.code for r in results] == [OK, OK, ERR_SIGNATURE, OK, OK, OK]
    assert "signature does not verify" in results[2].log
    assert tx_hash(encode(forged)) not in [c[0] for c in app.calls]
    assert len(pool) == 5

    # When the same forged tx arrives again
    again = pool.add_batch([encode(forged)])

    # Then it is refused from memory, without another signature check or app call
    assert again[0].code == ERR_SIGNATURE
    assert verify_calls == [6]
    assert len(app.calls) == 5


def test_signature_by_the_wrong_account_is_rejected_before_verification(app, verify_calls):
    # Given a tx whose message spends BOB's coins but which ALICE signed
    b = body(send(frm=BOB, to=CAROL))
    wrong = Tx(body=b, pubkey=ALICE.public_key, signature=ALICE.sign(sign_bytes(b)))
    pool = Mempool(app)

    # When it is added
    [result] = pool.add_batch([encode(wrong)])

    # Then it is refused as a signer mismatch with no signature work and no app call
    assert result.code == ERR_SIGNATURE
    assert BOB.address in result.log
    assert verify_calls == []
    assert app.calls == []


def test_duplicate_in_pool_is_rejected_without_app_or_signature_work(app, verify_calls):
    # Given a pool holding a tx
    raw = raw_tx(ALICE, 1)
    pool = Mempool(app)
    pool.add_batch([raw])

    # When the same tx arrives again, twice in one batch, from a peer
    results = pool.add_batch([raw, raw], source_peer="peer-a")

    # Then both copies are duplicates; only the first admission cost any work
    assert [r.code for r in results] == [ERR_DUPLICATE, ERR_DUPLICATE]
    assert verify_calls == [1]
    assert len(app.calls) == 1
    assert len(pool) == 1
    # and the peer that sent it is remembered, so gossip does not send it back
    assert pool.txs_after(0, exclude_peer="peer-a") == ([], 1)
    assert pool.txs_after(0, exclude_peer="peer-b") == ([raw], 1)


def test_duplicate_within_a_fresh_batch_is_admitted_once(app, verify_calls):
    # Given a batch that carries the same new tx twice
    raw = raw_tx(BOB, 1)
    pool = Mempool(app)

    # When it is added
    results = pool.add_batch([raw, raw])

    # Then the first copy is admitted and the second refused before signature work
    assert [r.code for r in results] == [OK, ERR_DUPLICATE]
    assert verify_calls == [1]
    assert len(app.calls) == 1


def test_recently_committed_tx_is_rejected_until_its_timeout_height(app, verify_calls):
    # Given a tx with timeout height 10 that a block at height 1 committed (never in our pool)
    raw = raw_tx(ALICE, 1, timeout_height=10)
    pool = Mempool(app)
    pool.update(1, [raw])

    # When a peer gossips it to us afterwards
    [result] = pool.add_batch([raw], source_peer="lagging-peer")

    # Then it is a duplicate, found without signature work or an app call
    assert result.code == ERR_DUPLICATE
    assert "committed" in result.log
    assert verify_calls == []
    assert app.calls == []

    # When the chain passes the tx's timeout height
    pool.update(10, [])

    # Then the tx is refused for its timeout height instead (the hash memory was released)
    [late] = pool.add_batch([raw])
    assert late.code == ERR_TIMEOUT
    assert app.calls == []


def test_tx_with_timeout_height_already_reached_is_refused(app):
    # Given a pool at height 5
    pool = Mempool(app, height=5)

    # When txs with timeout heights 5 and 6 arrive
    results = pool.add_batch([raw_tx(ALICE, 1, timeout_height=5),
                              raw_tx(ALICE, 2, timeout_height=6)])

    # Then the first can never be included and is refused; the second is admitted
    assert [r.code for r in results] == [ERR_TIMEOUT, OK]


def test_undecodable_and_oversized_bytes_are_refused(app, verify_calls):
    # Given junk, a non-canonical re-encoding and a tx over the size limit
    pool = Mempool(app, max_tx_bytes=400)
    big = raw_tx(ALICE, 1, memo="x" * 250)
    assert len(big) > 400
    results = pool.add_batch([b"\x00junk", raw_tx(ALICE, 2) + b"\x00", big])

    # Then each is refused with its own code and nothing reached the app
    assert [r.code for r in results] == [ERR_DECODE, ERR_DECODE, ERR_TOO_LARGE]
    assert "cannot decode Tx" in results[0].log
    assert verify_calls == []
    assert app.calls == []
    assert len(pool) == 0


def test_sender_quota_counts_the_pool_and_the_batch(app):
    # Given a quota of two txs per sender and one ALICE tx already waiting
    pool = Mempool(app, max_per_sender=2)
    pool.add_batch([raw_tx(ALICE, 0)])

    # When ALICE sends two more and BOB one
    results = pool.add_batch([raw_tx(ALICE, 1), raw_tx(ALICE, 2), raw_tx(BOB, 1)])

    # Then ALICE's second is over quota and never reaches the app; BOB is unaffected
    assert [r.code for r in results] == [OK, ERR_SENDER_QUOTA, OK]
    assert ALICE.address in results[1].log
    assert tx_hash(raw_tx(ALICE, 2)) not in [c[0] for c in app.calls]
    assert pool.sender_count(ALICE.address) == 2

    # When a fresh ALICE tx arrives in a later batch
    [later] = pool.add_batch([raw_tx(ALICE, 3)])

    # Then it is refused before any work
    assert later.code == ERR_SENDER_QUOTA


def test_full_pool_by_count_refuses_new_txs(app):
    # Given a pool that holds at most two txs
    pool = Mempool(app, max_txs=2)

    # When three arrive
    results = pool.add_batch([raw_tx(ALICE, 1), raw_tx(BOB, 1), raw_tx(CAROL, 1)])

    # Then the third is refused as full, without an app call, and arrival order decides
    assert [r.code for r in results] == [OK, OK, ERR_MEMPOOL_FULL]
    assert len(app.calls) == 2
    assert pool.add_batch([raw_tx(CAROL, 2)])[0].code == ERR_MEMPOOL_FULL


def test_full_pool_by_bytes_refuses_what_does_not_fit(app):
    # Given a pool whose byte bound fits exactly one tx
    first = raw_tx(ALICE, 1)
    pool = Mempool(app, max_bytes=len(first) + 10)

    # When two txs arrive
    results = pool.add_batch([first, raw_tx(BOB, 1)])

    # Then the second does not fit
    assert [r.code for r in results] == [OK, ERR_MEMPOOL_FULL]
    assert "bytes" in results[1].log
    assert pool.size_bytes == len(first)


def test_app_verdict_is_returned_and_the_tx_not_admitted(app):
    # Given an app that refuses one tx (say, insufficient funds)
    refused = raw_tx(BOB, 1)
    app.verdicts[tx_hash(refused)] = CheckTxResult(code=101, log="insufficient funds",
                                                   codespace="bank")
    pool = Mempool(app)

    # When it arrives with a good one
    results = pool.add_batch([refused, raw_tx(ALICE, 1)])

    # Then the app's code, log and codespace come back and only the good tx waits
    assert (results[0].code, results[0].log, results[0].codespace) == (101, "insufficient funds",
                                                                      "bank")
    assert results[1].admitted
    assert len(pool) == 1


def test_app_that_raises_gives_an_internal_error_not_a_crash(app):
    # Given an app that raises on one tx
    boom = raw_tx(ALICE, 1)
    app.raises.add(tx_hash(boom))
    pool = Mempool(app)

    # When it arrives
    [result] = pool.add_batch([boom])

    # Then it is refused with ERR_INTERNAL naming the exception
    assert result.code == ERR_INTERNAL
    assert "RuntimeError" in result.log
    assert len(pool) == 0


def test_gossip_cursor_returns_each_new_tx_once(app):
    # Given a pool with two txs from a client and one from peer "p1"
    pool = Mempool(app)
    a, b, c = raw_tx(ALICE, 1), raw_tx(BOB, 1), raw_tx(CAROL, 1)
    pool.add_batch([a, b])
    pool.add_batch([c], source_peer="p1")

    # When p1's gossip loop reads from the start, then again after another tx arrives
    first, cursor = pool.txs_after(0, exclude_peer="p1")
    d = raw_tx(ALICE, 2)
    pool.add_batch([d])
    second, cursor2 = pool.txs_after(cursor, exclude_peer="p1")

    # Then it gets every tx except its own, each exactly once, and the cursor follows last_seq
    assert first == [a, b]
    assert cursor == 3
    assert second == [d]
    assert cursor2 == pool.last_seq == 4
    assert pool.txs_after(0, max_txs=2) == ([a, b], 2)
