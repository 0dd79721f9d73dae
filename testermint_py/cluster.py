"""A local network of chain nodes, each a real `gonka chain start` process on 127.0.0.1.

`ChainCluster.create(root, n)` builds n home folders from one genesis (every node a validator of
equal power, full-mesh persistent peers, fast test timeouts, funded accounts) exactly as an
operator would with `gonka chain init` / `gonka genesis ...`; `start(i)`, `stop(i)`, `wipe(i)`
drive the processes; everything is observed through each node's public RPC only.

Waiting is on chain heights (polling the RPC), never on fixed sleeps. This is the `process`
backend of the harness; the API node and ML node join it in a later issue.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio

from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import MempoolConfig, NodeConfig, P2PConfig, RpcConfig
from chain.node.home import NodeHome
from chain.node.setup import init_home, node_key, read_genesis, validator_key, write_genesis
from chain.rpc.client import RpcClient
from chain.types.genesis import ConsensusParams, GenesisAccount, GenesisValidator

# Fast, but with room for 4 processes on 2 cores.
TEST_CONSENSUS = ConsensusParams(
    timeout_propose_ms=1500, timeout_propose_delta_ms=500,
    timeout_prevote_ms=500, timeout_prevote_delta_ms=500,
    timeout_precommit_ms=500, timeout_precommit_delta_ms=500,
    timeout_commit_ms=300,
)


# Ports handed out for servers: below Linux's ephemeral range (32768-60999 by default), so that
# no outgoing connection of any process can take one between `free_ports` and the server's bind
# (port 0 would pick from the ephemeral range: a race that showed as "Address already in use").
_SERVER_PORTS = range(20_000, 32_000)


def free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 now, outside the ephemeral range."""
    rng = random.Random()
    ports: list[int] = []
    socks = []
    try:
        while len(ports) < n:
            port = rng.choice(_SERVER_PORTS)
            if port in ports:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def gonka_command() -> list[str]:
    """The installed `gonka` console script of this interpreter's venv (or the same via -c)."""
    exe = shutil.which("gonka", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "from tools.cli import main; raise SystemExit(main())"]


@dataclass
class ClusterNode:
    index: int
    home: NodeHome
    rpc_url: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ChainCluster:
    root: Path
    chain_id: str
    nodes: list[ClusterNode]
    # Funded test accounts (secp256k1 keys), in genesis order.
    accounts: list[PrivateKey] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, n: int, *, chain_id: str = "testnet-1", accounts: int = 2,
               balance: int = 10**15, consensus: ConsensusParams = TEST_CONSENSUS
               ) -> ChainCluster:
        root = Path(root)
        ports = free_ports(2 * n)
        homes = []
        for i in range(n):
            config = NodeConfig(
                moniker=f"node{i}", log_level="info",
                p2p=P2PConfig(listen=f"127.0.0.1:{ports[2 * i]}", dial_backoff_max_s=2.0),
                rpc=RpcConfig(listen=f"127.0.0.1:{ports[2 * i + 1]}"),
                mempool=MempoolConfig())
            homes.append(init_home(root / f"node{i}", chain_id, moniker=f"node{i}", config=config))
        keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(accounts)]
        genesis = read_genesis(homes[0])
        genesis = msgspec.structs.replace(
            genesis, consensus=consensus,
            validators=tuple(GenesisValidator(name=f"node{i}", pubkey=validator_key(h).public_key,
                                              power=10, operator=keys[0].address)
                             for i, h in enumerate(homes)),
            accounts=tuple(GenesisAccount(address=k.address, balance=balance) for k in keys))
        genesis.validate()
        ids = [node_key(h).id.hex() for h in homes]
        for i, h in enumerate(homes):
            write_genesis(h, genesis)
            peers = [f'"{ids[j]}@127.0.0.1:{ports[2 * j]}"' for j in range(n) if j != i]
            text = h.config_file.read_text().replace(
                "persistent_peers = []", f"persistent_peers = [{', '.join(peers)}]")
            h.config_file.write_text(text)
        nodes = [ClusterNode(i, h, f"http://127.0.0.1:{ports[2 * i + 1]}")
                 for i, h in enumerate(homes)]
        return cls(root, chain_id, nodes, keys)

    # -- processes -----------------------------------------------------------------------------

    def start(self, i: int) -> None:
        node = self.nodes[i]
        assert not node.running, f"node {i} is running"
        node.log_path = self.root / f"node{i}.log"
        log = open(node.log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
        node.process = subprocess.Popen(
            [*gonka_command(), "chain", "start", "--home", str(node.home.root)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def start_all(self) -> None:
        for i in range(len(self.nodes)):
            self.start(i)

    def stop(self, i: int, *, kill: bool = False) -> None:
        """SIGTERM (a clean stop) or SIGKILL (a crash), and wait for the process to end."""
        node = self.nodes[i]
        if node.process is None:
            return
        node.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            node.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
        node.process = None

    def stop_all(self) -> None:
        for i in range(len(self.nodes)):
            self.stop(i)

    def wipe(self, i: int) -> None:
        """Delete node i's chain data, keeping its config, genesis and keys: a fresh node."""
        assert not self.nodes[i].running
        shutil.rmtree(self.nodes[i].home.data_dir)
        self.nodes[i].home.data_dir.mkdir(mode=0o700)

    def log_tail(self, i: int, lines: int = 30) -> str:
        path = self.nodes[i].log_path
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- observing through the RPC -------------------------------------------------------------

    def client(self, i: int) -> RpcClient:
        return RpcClient(self.nodes[i].rpc_url, timeout=10)

    async def height(self, i: int) -> int | None:
        """Node i's latest height, None when its RPC does not answer."""
        try:
            async with self.client(i) as c:
                return (await c.status()).latest_height
        except Exception:  # noqa: BLE001 - down, starting, or refusing: all mean "no height"
            return None

    async def max_height(self, nodes) -> int:
        """The highest height among `nodes` that answer (0 if none does)."""
        return max([await self.height(i) or 0 for i in nodes], default=0)

    async def wait_height(self, i: int, height: int, *, timeout: float = 120) -> None:
        """Wait until node i has committed `height`; fail with its log if it does not."""
        with trio.move_on_after(timeout):
            while True:
                h = await self.height(i)
                if h is not None and h >= height:
                    return
                if self.nodes[i].process is not None and not self.nodes[i].running:
                    raise AssertionError(f"node {i} exited:\n{self.log_tail(i)}")
                await trio.sleep(0.2)
        heights = [await self.height(j) for j in range(len(self.nodes))]
        logs = "\n".join(f"--- node {j} (height {heights[j]}):\n{self.log_tail(j, 15)}"
                         for j in range(len(self.nodes)))
        raise AssertionError(f"node {i} did not reach height {height} in {timeout} s\n{logs}")

    async def wait_all(self, height: int, nodes: list[int] | None = None, **kw) -> None:
        for i in nodes if nodes is not None else range(len(self.nodes)):
            await self.wait_height(i, height, **kw)

    async def app_hashes(self, i: int, up_to: int) -> list[str]:
        """The app hash in each header 2..up_to+1 as node i stores them (the state after h-1)."""
        async with self.client(i) as c:
            return [(await c.block(h)).header.app_hash for h in range(1, up_to + 1)]

    async def block_hashes(self, i: int, up_to: int) -> list[str]:
        async with self.client(i) as c:
            return [(await c.block(h)).hash for h in range(1, up_to + 1)]
