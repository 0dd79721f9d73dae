"""The chain client's tx sender: batches included; a bad message rejected alone; nothing lost or
sent twice when the RPC goes away, when the sender restarts, or when a tx expires unincluded.

Batching, rejection and authz run against a real single-validator node in-process; outages,
restarts and expiry against a scripted node (`StrictView`) behind the real RPC server, where the
test decides when blocks commit and what they hold."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
import trio

from api.chain import Outbox, TxSender
from chain.app.abci import ERR_DUPLICATE, ERR_TIMEOUT, TxResult
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.node import ChainNode
from chain.node.setup import (
    add_account,
    add_validator,
    init_home,
    read_genesis,
    validator_key,
    write_genesis,
)
from chain.rpc import RpcClient, serve_rpc
from chain.rpc.node_view import BroadcastMode, BroadcastResult
from chain.rpc.testing import MemoryNodeView, default_tx_result
from chain.types.msgs import MsgExec, MsgGrant, MsgSend
from chain.types.tx import Tx, decode_tx, tx_hash
from testermint_py.cluster import TEST_CONSENSUS
from tests.chain.test_rpc_http import served

ALICE = PrivateKey(bytes([21]) * 32)
BOB = PrivateKey(bytes([22]) * 32)
WARM = PrivateKey(bytes([23]) * 32)
FUNDS = 10**12
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05}


def send(amount: int, key: PrivateKey = ALICE) -> MsgSend:
    return MsgSend(from_address=key.address, to_address=BOB.address, amount=amount)


def sends_in(raw: bytes) -> list[int]:
    """The amounts of the transfers a raw tx carries (through MsgExec too)."""
    out = []
    for msg in decode_tx(raw).body.messages:
        for inner in (msg.msgs if isinstance(msg, MsgExec) else (msg,)):
            out.append(inner.amount)
    return out


# -- a real node ------------------------------------------------------------------------------


@pytest.fixture
async def node(tmp_path, nursery):
    config = NodeConfig(p2p=P2PConfig(listen="127.0.0.1:0"), rpc=RpcConfig(listen="127.0.0.1:0"))
    home = init_home(tmp_path / "node", "solo-1", config=config)
    add_account(home, ALICE.address, FUNDS)
    add_validator(home, name="v0", pubkey=validator_key(home).public_key, power=1,
                  operator=ALICE.address)
    write_genesis(home, msgspec.structs.replace(read_genesis(home), consensus=TEST_CONSENSUS))
    return await nursery.start(ChainNode(home.root).run)


@asynccontextmanager
async def sender_for(url: str, outbox_path: Path, key: PrivateKey = ALICE,
                     account: str = ALICE.address, chain_id: str = "solo-1", **options):
    """A running TxSender over a fresh Outbox object on `outbox_path`; stopped on exit."""
    outbox = Outbox(outbox_path)
    try:
        async with RpcClient(url) as rpc, trio.open_nursery() as nursery:
            sender = TxSender(rpc, outbox, key, account, chain_id=chain_id, **(FAST | options))
            await nursery.start(sender.run)
            yield sender
            nursery.cancel_scope.cancel()
    finally:
        outbox.close()


async def settle_all(sender: TxSender, ids: list[int]):
    with trio.fail_after(30):  # a hang guard, not a timing assertion
        return [await sender.wait_settled(i) for i in ids]


async def balance(url: str, key: PrivateKey) -> int:
    async with RpcClient(url) as rpc:
        return (await rpc.query("bank/balance", address=key.address))["amount"]


async def test_a_batch_of_messages_is_included_in_one_tx(node, tmp_path):
    # Given five transfers waiting in the outbox
    with Outbox(tmp_path / "outbox.db") as outbox:
        ids = outbox.put_many([send(n) for n in range(1, 6)])
    # when the sender runs
    async with sender_for(node.rpc_url, tmp_path / "outbox.db") as sender:
        results = await settle_all(sender, ids)
    # then all are included, together in one tx, and the coins moved
    assert [r.state for r in results] == ["included"] * 5
    assert len({r.tx_hash for r in results}) == 1
    assert await balance(node.rpc_url, BOB) == 15


async def test_a_bad_message_in_a_batch_is_rejected_alone(node, tmp_path):
    # Given a batch whose middle transfer is more than Alice has
    with Outbox(tmp_path / "outbox.db") as outbox:
        ids = outbox.put_many([send(1), send(FUNDS * 2), send(3)])
    async with sender_for(node.rpc_url, tmp_path / "outbox.db") as sender:
        ok1, bad, ok3 = await settle_all(sender, ids)
    # then only that one is rejected, with the chain's reason, and the others are included
    assert (ok1.state, bad.state, ok3.state) == ("included", "rejected", "included")
    assert bad.code == 101 and "needs" in bad.log
    assert ok1.tx_hash != ok3.tx_hash  # the split sent them one per tx
    assert await balance(node.rpc_url, BOB) == 4


async def test_a_warm_key_sends_for_its_account_through_authz(node, tmp_path):
    async with sender_for(node.rpc_url, tmp_path / "warm.db", key=WARM) as warm, \
            sender_for(node.rpc_url, tmp_path / "cold.db") as cold:
        # Given no grant yet, a transfer the warm key sends for Alice is rejected by authz,
        [refused] = await settle_all(warm, [warm.submit(send(5))])
        assert refused.state == "rejected" and refused.code >= 100
        # when Alice grants the warm key MsgSend,
        [granted] = await settle_all(cold, [cold.submit(MsgGrant(
            granter=ALICE.address, grantee=WARM.address, msg_types=("bank/MsgSend",),
            expiration_height=None))])
        assert granted.state == "included"
        # then the warm key's transfer of Alice's coins goes through, as a MsgExec it signed.
        [sent] = await settle_all(warm, [warm.submit(send(7))])
    assert sent.state == "included"
    async with RpcClient(node.rpc_url) as rpc:
        tx = msgspec.msgpack.decode((await rpc.tx(sent.tx_hash)).tx, type=Tx)
    assert tx.signer == WARM.address
    assert isinstance(tx.body.messages[0], MsgExec)
    assert tx.body.messages[0].msgs == (send(7),)
    assert await balance(node.rpc_url, BOB) == 7


# -- a scripted node ----------------------------------------------------------------------------


class StrictView(MemoryNodeView):
    """A MemoryNodeView that refuses what any node refuses for a tx's bytes alone (a hash it
    holds or committed, a timeout height not above the latest) and never commits an expired
    pending tx."""

    async def broadcast_tx(self, raw: bytes, mode: BroadcastMode) -> BroadcastResult:
        h = tx_hash(raw)
        if h in self.txs or raw in self.pending:
            self.broadcasts.append((raw, mode))
            return BroadcastResult(hash=h, code=ERR_DUPLICATE, log="tx was already seen")
        if decode_tx(raw).body.timeout_height <= self.latest_height():
            self.broadcasts.append((raw, mode))
            return BroadcastResult(hash=h, code=ERR_TIMEOUT, log="timeout height passed")
        return await super().broadcast_tx(raw, mode)

    def commit_block(self, txs=None, **kwargs):
        if txs is None:
            txs = [t for t in self.pending
                   if decode_tx(t).body.timeout_height > self.latest_height()]
        return super().commit_block(txs, **kwargs)

    def committed_sends(self) -> list[int]:
        """Every transfer amount in a block whose tx succeeded, as often as it executed."""
        return [a for rec in self.txs.values() if rec.result.code == 0
                for a in sends_in(rec.raw)]


CHAIN = "gonka-test-1"


async def test_a_tx_that_expires_unincluded_is_sent_again_as_a_fresh_tx(tmp_path):
    # Given a sender whose txs are valid for 2 blocks
    view = StrictView()
    async with served(view) as url, \
            sender_for(url, tmp_path / "o.db", chain_id=CHAIN, timeout_blocks=2) as sender:
        message = sender.submit(send(9))
        await view.wait_for_pending(1)
        [(first, _)] = view.broadcasts
        # when three blocks commit without it
        await view.wait_for_waiters(1)  # the sender follows the blocks
        for _ in range(3):
            view.commit_block([])
        # then its message goes out again in a new tx, and that one is included
        await view.wait_for_pending(2)
        view.commit_block()
        [result] = await settle_all(sender, [message])
        attempts = sender.outbox.get(message).attempts
    assert result.state == "included"
    assert result.tx_hash != tx_hash(first).hex()
    assert attempts == 2
    assert view.committed_sends() == [9]


async def test_nothing_is_lost_or_doubled_while_the_rpc_is_away(tmp_path):
    # Given a sender whose first batch is in the node's mempool
    view = StrictView()
    async with trio.open_nursery() as outer:
        first_server = trio.CancelScope()

        async def serve_first(task_status):
            with first_server:
                await serve_rpc(view, "127.0.0.1", 0, task_status=task_status)

        url = await outer.start(serve_first)
        port = int(url.rsplit(":", 1)[1])
        async with sender_for(url, tmp_path / "o.db", chain_id=CHAIN) as sender:
            early = sender.submit_many([send(1), send(2)])
            await view.wait_for_pending(1)
            await view.wait_for_waiters(1)  # the sender follows the blocks
            # when the RPC goes away, the batch is committed meanwhile, and more messages come
            first_server.cancel()
            view.commit_block()
            late = sender.submit(send(3))
            await sender.wait_health(False)
            # and the RPC comes back
            async with served(view, port=port):
                await view.wait_for_pending(1)
                view.commit_block()
                results = await settle_all(sender, early + [late])
                assert (await sender.wait_health(True)).ok
    # then every message is included exactly once: the first batch was found, not resent
    assert [r.state for r in results] == ["included"] * 3
    assert sorted(view.committed_sends()) == [1, 2, 3]
    assert len({raw for raw, _ in view.broadcasts}) == 2


async def test_messages_put_before_a_restart_are_sent_once(tmp_path):
    # Given messages put in the outbox by a process that stopped before sending them
    with Outbox(tmp_path / "o.db") as outbox:
        ids = outbox.put_many([send(4), send(5)])
    view = StrictView()
    async with served(view) as url:
        # when a new sender starts on the same file
        async with sender_for(url, tmp_path / "o.db", chain_id=CHAIN) as sender:
            await view.wait_for_pending(1)
            view.commit_block()
            results = await settle_all(sender, ids)
    # then each is sent once and included once
    assert [r.state for r in results] == ["included"] * 2
    assert len(view.broadcasts) == 1
    assert view.committed_sends() == [4, 5]


async def test_a_sender_restarted_mid_flight_offers_the_same_tx_again(tmp_path):
    view = StrictView()
    async with served(view) as url:
        # Given a sender that broadcast a batch and stopped before any block held it,
        async with sender_for(url, tmp_path / "o.db", chain_id=CHAIN) as sender:
            ids = sender.submit_many([send(6), send(7)])
            await view.wait_for_pending(1)
        # and a node that lost its mempool meanwhile,
        view.pending.clear()
        # when the sender restarts on the same outbox
        async with sender_for(url, tmp_path / "o.db", chain_id=CHAIN) as sender:
            # then it offers the very same tx again (not a fresh one)
            await view.wait_for_pending(1)
            view.commit_block()
            results = await settle_all(sender, ids)
    assert [r.state for r in results] == ["included"] * 2
    assert len(view.broadcasts) == 2 and view.broadcasts[0][0] == view.broadcasts[1][0]
    assert view.committed_sends() == [6, 7]


async def test_a_batch_that_fails_in_its_block_is_split_and_only_the_culprit_rejected(tmp_path):
    view = StrictView()
    failure = TxResult(code=101, log="message 1 (bank/MsgSend): not enough coins",
                       codespace="bank")
    async with served(view) as url, \
            sender_for(url, tmp_path / "o.db", chain_id=CHAIN) as sender:
        # Given a batch of three that passes the check but fails when its block runs
        ids = sender.submit_many([send(1), send(2), send(3)])
        await view.wait_for_pending(1)
        view.commit_block(results=[failure])
        # when the sender resends them one per tx, and only the transfer of 2 fails again
        await view.wait_for_pending(3)
        singles = list(view.pending)
        view.commit_block(singles, results=[failure if sends_in(raw) == [2]
                                            else default_tx_result(raw) for raw in singles])
        results = await settle_all(sender, ids)
    # then the other two are included and that one is rejected with the chain's log
    assert [r.state for r in results] == ["included", "rejected", "included"]
    assert results[1].code == 101 and "not enough coins" in results[1].log
    assert sorted(view.committed_sends()) == [1, 3]


async def test_results_are_published_on_a_channel(tmp_path):
    view = StrictView()
    send_ch, recv_ch = trio.open_memory_channel(10)
    async with served(view) as url, \
            sender_for(url, tmp_path / "o.db", chain_id=CHAIN, results=send_ch) as sender:
        ids = sender.submit_many([send(1), send(2)])
        await view.wait_for_pending(1)
        block = view.commit_block()
        got = [await recv_ch.receive(), await recv_ch.receive()]
    assert [(s.message_id, s.state, s.height) for s in got] == [
        (ids[0], "included", block.header.height), (ids[1], "included", block.header.height)]
