"""The outbox: what `put` returns survives reopening the file; messages move queued -> sent ->
included/rejected (or back to queued) only by the allowed steps; nothing vanishes unasked."""

from __future__ import annotations

import pytest

from api.chain import Outbox, OutboxError
from chain.crypto.secp256k1 import PrivateKey
from chain.types.codec import DecodeError
from chain.types.msgs import MsgSend

ALICE = PrivateKey(bytes([31]) * 32)
BOB = PrivateKey(bytes([32]) * 32)


def send(amount: int) -> MsgSend:
    return MsgSend(from_address=ALICE.address, to_address=BOB.address, amount=amount)


def test_put_messages_survive_reopening_in_order(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        a = outbox.put(send(1))
        b, c = outbox.put_many([send(2), send(3)])
    with Outbox(tmp_path / "o.db") as outbox:
        queued = outbox.queued(10)
    assert [e.id for e in queued] == [a, b, c]
    assert [e.msg for e in queued] == [send(1), send(2), send(3)]
    assert all(e.state == "queued" and e.tag == "bank/MsgSend" for e in queued)


def test_a_message_the_chain_could_not_decode_is_refused_and_nothing_is_stored(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        with pytest.raises(DecodeError):  # amount 0 breaks the wire rule PositiveAmount
            outbox.put_many([send(1), send(0)])
        assert outbox.counts() == {"queued": 0, "sent": 0, "included": 0, "rejected": 0}


def test_a_sent_tx_settles_all_its_messages_and_is_forgotten(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        ids = outbox.put_many([send(1), send(2)])
        outbox.assign(ids, b"h" * 32, b"raw", timeout_height=9)
        [pending] = outbox.pending_txs()
        assert (pending.hash, pending.raw, pending.timeout_height, pending.message_ids) == (
            b"h" * 32, b"raw", 9, tuple(ids))
        with pytest.raises(OutboxError):  # already sent
            outbox.assign(ids, b"i" * 32, b"raw2", timeout_height=9)
        assert outbox.settle_tx(b"h" * 32, "included", code=0, log="", height=7) == ids
        assert outbox.pending_txs() == []
        entry = outbox.get(ids[0])
    assert (entry.state, entry.height, entry.result_code, entry.attempts) == ("included", 7, 0, 1)


def test_a_requeued_tx_frees_its_messages_for_a_fresh_tx(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        ids = outbox.put_many([send(1), send(2)])
        outbox.assign(ids, b"h" * 32, b"raw", timeout_height=9)
        outbox.requeue_tx(b"h" * 32, "batch refused", solo=True)
        queued = outbox.queued(10)
        assert [(e.id, e.solo, e.tx_hash, e.last_error) for e in queued] == [
            (ids[0], True, None, "batch refused"), (ids[1], True, None, "batch refused")]
        assert outbox.pending_txs() == []
        outbox.assign(ids[:1], b"j" * 32, b"raw", timeout_height=12)
        assert outbox.get(ids[0]).attempts == 2


def test_settled_messages_stay_until_pruned_and_only_included_ones_prune(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        ok, bad, waiting = outbox.put_many([send(1), send(2), send(3)])
        outbox.assign([ok], b"a" * 32, b"raw", timeout_height=5)
        outbox.settle_tx(b"a" * 32, "included", code=0, log="", height=3)
        outbox.reject_queued(bad, "cannot make a valid tx", code=1)
    with Outbox(tmp_path / "o.db") as outbox:
        assert outbox.counts() == {"queued": 1, "sent": 0, "included": 1, "rejected": 1}
        newest = max(e.updated_ns for e in outbox.entries())
        assert outbox.prune_included(older_than_ns=newest + 1) == 1
        assert outbox.get(ok) is None
        assert outbox.get(bad).state == "rejected"
        assert outbox.get(bad).last_error == "cannot make a valid tx"
        assert outbox.get(waiting).state == "queued"
