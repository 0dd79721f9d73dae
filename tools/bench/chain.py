"""`gonka bench chain`: committed bank transfers per second and broadcast-to-commit latency, for
a 1-validator and a 4-validator network of real `gonka chain start` processes on this machine.

Every transfer is signed beforehand (from many accounts, so that no per-sender quota binds), then
sent through the nodes' RPC (`POST /txs`, async mode) by a few concurrent clients spread over the
nodes. Commit times come from polling the RPC for new blocks, so each latency is an upper bound
by at most the polling interval. Throughput = transfers committed / (last commit - first send).
Both network sizes run in the same process, printed side by side; the issue's goal is 1,000 tx/s
with 1 validator and 400 tx/s with 4, with one-second blocks.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from chain.crypto.secp256k1 import PrivateKey
from chain.rpc.client import RpcClient
from chain.types.codec import encode
from chain.types.genesis import ConsensusParams
from chain.types.msgs import MsgSend
from chain.types.tx import TxBody, sign_tx, tx_hash
from testermint_py.cluster import ChainCluster

# One-second blocks, as the target says.
BENCH_CONSENSUS = ConsensusParams(timeout_commit_ms=1000, timeout_propose_ms=3000,
                                  timeout_prevote_ms=1000, timeout_precommit_ms=1000)
POLL_S = 0.05


@dataclass
class ChainFigure:
    validators: int
    sent: int
    committed: int
    seconds: float
    latencies: list[float]

    @property
    def tps(self) -> float:
        return self.committed / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        lat = sorted(self.latencies)
        med = statistics.median(lat) if lat else float("nan")
        p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
        return (f"{self.validators} validator(s): {self.committed:>6,}/{self.sent:,} committed "
                f"in {self.seconds:6.1f} s = {self.tps:7.1f} tx/s; broadcast->commit median "
                f"{med * 1000:7.0f} ms, p99 {p99 * 1000:7.0f} ms")


def _signed_transfers(chain_id: str, senders: list[PrivateKey], n: int, timeout_height: int
                      ) -> list[bytes]:
    recipient = PrivateKey(bytes([200]) * 32).address
    out = []
    for i in range(n):
        key = senders[i % len(senders)]
        body = TxBody(chain_id=chain_id, messages=(MsgSend(from_address=key.address,
                                                           to_address=recipient, amount=1),),
                      memo=f"bench {i}", timeout_height=timeout_height)
        out.append(encode(sign_tx(body, key)))
    return out


async def _measure(cluster: ChainCluster, txs: list[bytes], clients: int) -> ChainFigure:
    sent_at: dict[bytes, float] = {}
    committed_at: dict[bytes, float] = {}
    done = trio.Event()

    async def sender(k: int) -> None:
        async with RpcClient(cluster.nodes[k % len(cluster.nodes)].rpc_url) as rpc:
            for raw in txs[k::clients]:
                sent_at[tx_hash(raw)] = time.perf_counter()
                await rpc.broadcast(raw, "async")

    async def watcher() -> None:
        async with RpcClient(cluster.nodes[0].rpc_url) as rpc:
            seen = (await rpc.status()).latest_height
            idle_blocks = 0
            while len(committed_at) < len(txs) and idle_blocks < 5:
                latest = (await rpc.status()).latest_height
                now = time.perf_counter()
                for h in range(seen + 1, latest + 1):
                    block = await rpc.block(h)
                    hashes = [bytes.fromhex(x) for x in block.tx_hashes]
                    for x in hashes:
                        committed_at.setdefault(x, now)
                    idle_blocks = 0 if hashes or len(sent_at) < len(txs) else idle_blocks + 1
                seen = latest
                await trio.sleep(POLL_S)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watcher)
        for k in range(clients):
            nursery.start_soon(sender, k)
        await done.wait()
    ours = [h for h in committed_at if h in sent_at]
    first = min(sent_at.values())
    last = max((committed_at[h] for h in ours), default=first)
    return ChainFigure(len(cluster.nodes), len(txs), len(ours), last - first,
                       [committed_at[h] - sent_at[h] for h in ours])


async def _one(n: int, txs_count: int, accounts: int, clients: int, root: Path) -> ChainFigure:
    cluster = ChainCluster.create(root / f"net{n}", n, accounts=accounts,
                                  consensus=BENCH_CONSENSUS)
    cluster.start_all()
    try:
        await cluster.wait_all(2)
        txs = _signed_transfers(cluster.chain_id, cluster.accounts, txs_count,
                                timeout_height=10_000)
        return await _measure(cluster, txs, clients)
    finally:
        cluster.stop_all()


def run(txs: int = 5000, accounts: int = 100, clients: int = 8,
        print_fn: Callable[[str], None] = print) -> list[ChainFigure]:
    figures = []
    with tempfile.TemporaryDirectory(prefix="gonka-bench-chain-") as tmp:
        for n in (1, 4):
            figure = trio.run(_one, n, txs, accounts, clients, Path(tmp))
            figures.append(figure)
            print_fn(figure.line())
    if figures[0].tps:
        print_fn(f"4 validators / 1 validator throughput ratio: "
                 f"{figures[1].tps / figures[0].tps:.2f}")
    return figures
