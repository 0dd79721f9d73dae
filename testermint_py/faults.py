"""Byzantine faults for `testermint_py.network` scenarios, built on Network's public attributes
and methods only (homes, ports, the backend, RPC clients).

A double-signing validator: `start_twin(net, i)` runs a second chain node with participant i's
consensus key - its own home (a fresh node key, its own ports, participant i's genesis), its own
sign-state file and WAL, peers = every participant. Each instance alone never signs twice for a
height, round and step, but the two know nothing of each other:

* when participant i is the proposer, each builds its own block (the block time is the
  proposer's clock in ns, and each has its own mempool and last commit), proposes it and
  prevotes it: two prevotes of one validator for two blocks, in every round i proposes;
* in other rounds the two usually prevote the same block (no evidence), unless one of them
  timed out waiting for the proposal and prevoted nil.

The honest nodes see both votes, record `DuplicateVoteEvidence`, gossip it, and the next
proposer puts it in a block. With equal powers participant i proposes once every n heights, so
evidence is on chain a few heights after the twin has caught up by block sync.

    twin = start_twin(net, 3)
    try:
        ...wait for the evidence...
    finally:
        twin.stop()

`send_tx(net, i, *msgs)` signs messages as participant i's account (or `send_tx(net, key, ...)` with
any key, e.g. a developer's) and waits for the block.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.home import NodeHome
from chain.node.setup import init_home, node_key
from chain.rpc.client import RpcClient
from chain.rpc.schema import BroadcastView
from chain.types import TxBody, encode, sign_tx
from testermint_py.cluster import free_ports, gonka_command
from testermint_py.network import Network, NetworkError

# A tx sent by send_tx must be in a block within this many heights.
TX_TIMEOUT_BLOCKS = 50
_MEMOS = itertools.count()


@dataclass
class Twin:
    """A second chain node signing with participant `index`'s consensus key."""

    index: int
    home: NodeHome
    rpc_url: str
    log_path: Path
    process: subprocess.Popen

    def rpc(self) -> RpcClient:
        return RpcClient(self.rpc_url, timeout=10)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 30 s)."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def build_twin(net: Network, i: int) -> tuple[NodeHome, str]:
    """The twin's home under <root>/p<i>-twin/chain (nothing started) and its RPC URL."""
    p = net.participants[i]
    ports = free_ports(2)
    peers = [f"{node_key(q.chain_home).id.hex()}@{q.address}:{q.ports['p2p']}"
             for q in net.participants]
    config = NodeConfig(moniker=f"{p.name}-twin",
                        p2p=P2PConfig(listen=f"{p.address}:{ports[0]}", persistent_peers=peers,
                                      dial_backoff_max_s=0.5),
                        rpc=RpcConfig(listen=f"{p.address}:{ports[1]}"))
    home = init_home(net.root / f"{p.name}-twin" / "chain", net.chain_id, moniker=config.moniker,
                     config=config, profile="devnet")
    # The same consensus key and genesis; everything in data/ (state, blocks, WAL, sign state)
    # is the twin's own, so its sign state never learns what the original signed.
    shutil.copyfile(p.chain_home.validator_key_file, home.validator_key_file)
    shutil.copyfile(p.chain_home.genesis_file, home.genesis_file)
    return home, f"http://{p.address}:{ports[1]}"


def start_twin(net: Network, i: int) -> Twin:
    """Build and start participant i's twin (through the network's backend, at participant i's
    address); it catches up by block sync, then double-signs whenever i proposes."""
    home, rpc_url = build_twin(net, i)
    log_path = net.root / "logs" / f"{net.participants[i].name}-twin-chain.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [*gonka_command(), "chain", "start", "--home", str(home.root)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(net.backend.command(i, argv), stdout=log,
                                   stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return Twin(index=i, home=home, rpc_url=rpc_url, log_path=log_path, process=process)


async def send_tx(net: Network, signer: int | PrivateKey, *msgs: object,
                  node: int | None = None) -> int:
    """Sign `msgs` as participant `signer`'s account (or with the key `signer`, e.g. a
    developer's), broadcast them to node `node` (default: the participant, else 0) and wait
    for the block; the height. NetworkError if the tx is refused or fails."""
    if isinstance(signer, int):
        key, who = net.participants[signer].key, f"p{signer}"
        node = signer if node is None else node
    else:
        key, who = signer, signer.address
        node = 0 if node is None else node
    async with net.rpc(node) as rpc:
        height = (await rpc.status()).latest_height
        # A fresh memo: the same messages sent twice are two txs (a tx hash is seen once).
        body = TxBody(chain_id=net.chain_id, messages=tuple(msgs),
                      timeout_height=height + TX_TIMEOUT_BLOCKS,
                      memo=f"testermint {next(_MEMOS)}")
        answer: BroadcastView = await rpc.broadcast(encode(sign_tx(body, key)), mode="commit")
    if answer.code != 0 or answer.result is None or answer.result.code != 0:
        raise NetworkError(f"tx of {who} not committed: {answer}")
    assert answer.height is not None
    return answer.height
