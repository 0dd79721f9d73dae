"""Four validators as real `gonka chain start` processes on 127.0.0.1, observed through the RPC.

The issue's scenario: they commit blocks and transfers; one stopped leaves the chain running; two
stopped halt it without a fork; restarting them resumes it; a node wiped back to its genesis file
re-syncs from peers and agrees on every block and app hash.
"""

from __future__ import annotations

import pytest
import trio

from chain.types.codec import encode
from chain.types.msgs import MsgSend
from chain.types.tx import TxBody, sign_tx
from testermint_py.cluster import ChainCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path):
    c = ChainCluster.create(tmp_path, 4)
    try:
        yield c
    finally:
        c.stop_all()


async def _transfer(cluster: ChainCluster, via: int, amount: int) -> int:
    """Send `amount` from account 0 to account 1 through node `via`; the height it landed at."""
    sender, recipient = cluster.accounts
    async with cluster.client(via) as c:
        status = await c.status()
        body = TxBody(chain_id=status.chain_id,
                      messages=(MsgSend(from_address=sender.address, to_address=recipient.address,
                                        amount=amount),),
                      memo=f"transfer {amount}", timeout_height=status.latest_height + 50)
        result = await c.broadcast(encode(sign_tx(body, sender)), "commit")
    assert result.code == 0, result.log
    assert result.height is not None and result.result.code == 0, result
    return result.height


async def _balances(cluster: ChainCluster, i: int) -> tuple[int, int, int]:
    async with cluster.client(i) as c:
        a, b = [await c.query("bank/balance", address=k.address) for k in cluster.accounts]
        supply = await c.query("bank/supply")
    return a["amount"], b["amount"], supply["amount"]


async def _assert_same_chain(cluster: ChainCluster, nodes: list[int], up_to: int) -> None:
    blocks = [await cluster.block_hashes(i, up_to) for i in nodes]
    apps = [await cluster.app_hashes(i, up_to) for i in nodes]
    for i, (b, a) in enumerate(zip(blocks, apps, strict=True)):
        assert b == blocks[0], f"node {nodes[i]} has other blocks than node {nodes[0]}"
        assert a == apps[0], f"node {nodes[i]} has other app hashes than node {nodes[0]}"


async def test_four_validators_survive_one_halt_at_two_resume_and_resync(cluster):
    start_balance = 10**15  # ChainCluster.create's default
    cluster.start_all()
    # Given four validators producing blocks,
    await cluster.wait_all(2)
    # when transfers go in through different nodes, they commit and every node agrees.
    for via, amount in ((0, 1_000), (1, 2_000), (2, 3_000)):
        landed = await _transfer(cluster, via, amount)
    await cluster.wait_all(landed)
    for i in range(4):
        assert await _balances(cluster, i) == (start_balance - 6_000, start_balance + 6_000,
                                               2 * start_balance)

    # One validator stopped (a quarter of the power): the other three keep committing.
    cluster.stop(3)
    h = await cluster.max_height(range(3))
    await cluster.wait_all(h + 3, [0, 1, 2])
    await _transfer(cluster, 1, 4_000)

    # Two stopped (half the power): no quorum, so the chain halts instead of forking.
    cluster.stop(2, kill=True)
    halted_at = await cluster.max_height(range(2))
    await trio.sleep(6)  # what 10+ blocks would take at this cluster's pace: long enough to see
    for i in range(2):
        assert await cluster.height(i) <= halted_at + 1, "committed without a quorum"

    # Restarting both brings the quorum back and the chain resumes.
    cluster.start(2)
    cluster.start(3)
    resumed = await cluster.max_height(range(2)) + 3
    await cluster.wait_all(resumed)
    await _transfer(cluster, 3, 5_000)

    # A node wiped back to its genesis file re-syncs from its peers,
    cluster.stop(3)
    cluster.wipe(3)
    cluster.start(3)
    target = await cluster.max_height(range(3)) + 2
    await cluster.wait_all(target)
    # and every node has the same blocks, the same app hashes and the same balances.
    await _assert_same_chain(cluster, [0, 1, 2, 3], target)
    expected = (start_balance - 15_000, start_balance + 15_000, 2 * start_balance)
    for i in range(4):
        assert await _balances(cluster, i) == expected


async def test_a_node_whose_state_diverged_stops_naming_the_height(cluster):
    import sqlite3

    import msgspec

    cluster.start_all()
    await cluster.wait_all(2)
    # Given node 3 whose state was edited behind the chain's back (account 0 left with 1 ngonka),
    cluster.stop(3)
    db = sqlite3.connect(cluster.nodes[3].home.state_db)
    key = b"bank/balance/" + cluster.accounts[0].address.encode()
    with db:
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (msgspec.msgpack.encode(1), key))
    db.close()
    cluster.start(3)
    await cluster.wait_height(3, await cluster.max_height(range(3)))
    # when a transfer from that account commits on the honest three,
    landed = await _transfer(cluster, 0, 1_000)
    # then node 3 computes another app hash and stops with a message naming the height,
    with trio.fail_after(60):
        while cluster.nodes[3].running:
            await trio.sleep(0.2)
    log = cluster.log_tail(3, 5)
    assert cluster.nodes[3].process.returncode == 1, log
    assert f"app hash mismatch at height {landed}" in log, log
    # while the other three go on.
    await cluster.wait_all(landed + 2, [0, 1, 2])
