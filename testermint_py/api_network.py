"""A two-host network for API-node benchmarks and tests: two chain nodes (the hosts'
validators, devnet profile, TEST_CONSENSUS blocks) and each host's API node as `gonka api start`
runs it (`serve_api`: the broker over its own mock ML node, the PoC orchestrator,
self-registration), taken from genesis to epoch 1's inference stage with both ML nodes serving.

`api_network(root)` yields an `ApiNetwork` once both hosts can serve inferences. By default
everything runs in this process (tests reach into the API nodes); `processes=True` runs each
chain node, API node and mock ML node as its own process (`gonka chain start`, `gonka api
start`, `python -m testermint_py.mock_mlnode`), as hosts run them, so that they share the
machine's cores as they would in production (`gonka bench api` measures that way).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import trio

from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from chain.app.profiles import DEVNET_MODEL
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.home import NodeHome
from chain.node.node import ChainNode
from chain.node.setup import init_home, node_key, read_genesis, validator_key, write_genesis
from chain.rpc.client import RpcClient
from chain.types.genesis import ConsensusParams, GenesisAccount, GenesisValidator
from testermint_py.cluster import TEST_CONSENSUS, free_ports, gonka_command
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode

MODEL = DEVNET_MODEL
CHAIN_ID = "api-network-1"
HOSTS = [PrivateKey(bytes([90 + i]) * 32) for i in range(2)]
DEV = PrivateKey(bytes([95]) * 32)
FUNDS = 10**15
PRICE = 10
# Each host's mock finds this many nonces (equal: with two hosts the chain caps each at half).
WEIGHTS = (150, 150)
FIRST_POC = 20
EPOCHS = {"epoch_length": 2000, "first_poc_start": FIRST_POC}
HANG_GUARD_S = 180                          # a hang guard, not a timing assertion


def chain_homes(root: Path, p2p: list[int], rpc: list[int], *, price: int = PRICE,
                chain_id: str = CHAIN_ID, epochs: dict | None = None,
                consensus: ConsensusParams = TEST_CONSENSUS,
                params: dict[str, dict] | None = None) -> list[NodeHome]:
    """Two validator homes sharing one genesis (hosts and DEV funded), each peering the other.
    `price` is the grace-period price per token (0: free inference); `epochs` (default EPOCHS)
    and `params` (per module) update the devnet profile."""
    homes = []
    for i in range(2):
        config = NodeConfig(p2p=P2PConfig(listen=f"127.0.0.1:{p2p[i]}", dial_backoff_max_s=0.5),
                            rpc=RpcConfig(listen=f"127.0.0.1:{rpc[i]}"))
        homes.append(init_home(root / f"chain{i}", chain_id, moniker=f"node{i}", config=config,
                               profile="devnet"))
    genesis = read_genesis(homes[0])
    app_params = {k: dict(v) for k, v in genesis.app_params.items()}
    overrides = {"epochs": EPOCHS if epochs is None else epochs,
                 "inference": {"grace_per_token_price": price}, **(params or {})}
    for module, values in overrides.items():
        app_params[module] = {**app_params.get(module, {}), **values}
    genesis = msgspec.structs.replace(
        genesis, consensus=consensus, app_params=app_params,
        validators=tuple(GenesisValidator(name=f"node{i}", pubkey=validator_key(h).public_key,
                                          power=10, operator=HOSTS[i].address)
                         for i, h in enumerate(homes)),
        accounts=tuple(GenesisAccount(address=k.address, balance=FUNDS)
                       for k in (*HOSTS, DEV)))
    ids = [node_key(h).id.hex() for h in homes]
    for i, h in enumerate(homes):
        write_genesis(h, genesis)
        peer = f'"{ids[1 - i]}@127.0.0.1:{p2p[1 - i]}"'
        h.config_file.write_text(h.config_file.read_text().replace(
            "persistent_peers = []", f"persistent_peers = [{peer}]"))
    return homes


def api_config(i: int, home: NodeHome, rpc_url: str, port: int, mlnode_url: str) -> dict:
    """Host i's settings as an operator would write them (with test-paced broker and PoC)."""
    return {"account": HOSTS[i].address, "chain_rpc": rpc_url,
            "public_url": f"http://127.0.0.1:{port}",
            "public": {"host": "127.0.0.1", "port": port},
            "callbacks": {"port": 0}, "admin": {"port": 0},
            "validator_key": validator_key(home).public_key.hex(),
            "ml_nodes": [{"id": "gpu0", "url": mlnode_url, "models": [MODEL]}],
            "broker": {"poll_interval_s": 1.0, "retry_delay_s": 0.05},
            "poc": {"commit_every_blocks": 2, "proof_timeout_s": 10.0}}


async def each_block(rpc_url: str, check: Callable[[], Awaitable[object]]) -> object:
    """`check()`'s first truthy answer, asked now and after every new block."""
    with trio.fail_after(HANG_GUARD_S):
        async with RpcClient(rpc_url) as rpc, rpc.events(types=("none",)) as frames:
            if answer := await check():
                return answer
            async for _ in frames:
                if answer := await check():
                    return answer
    raise AssertionError("unreachable")


@dataclass
class ApiEndpoints:
    """An API node run as a process: the base URLs of its public and admin servers."""

    public_url: str
    admin_url: str


@dataclass
class ApiNetwork:
    servers: list[ApiServer] | list[ApiEndpoints]
    mlnode_urls: list[str]
    rpc_urls: list[str]


@asynccontextmanager
async def api_network(root: Path, *, price: int = PRICE, processes: bool = False
                      ) -> AsyncIterator[ApiNetwork]:
    """The network from genesis, yielded in epoch 1's inference stage with both hosts' ML nodes
    serving MODEL; everything stops when the block exits."""
    p2p0, p2p1, rpc0, rpc1, api0, api1 = free_ports(6)
    homes = chain_homes(root, [p2p0, p2p1], [rpc0, rpc1], price=price)
    mock_cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                       watchdog_interval_s=0.05)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=60) as http:
        servers: list = []
        mocks: list[str] = []
        if processes:
            rpc_urls = await _start_processes(nursery, http, root, homes, [rpc0, rpc1],
                                              [api0, api1], servers, mocks)
        else:
            chains = [await nursery.start(ChainNode(h.root).run) for h in homes]
            rpc_urls = [c.rpc_url for c in chains]
            for i, port in enumerate((api0, api1)):
                mock_url = await nursery.start(functools.partial(
                    serve_mock_mlnode, mock_cfg,
                    script=MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
                mocks.append(mock_url)
                raw = api_config(i, homes[i], chains[i].rpc_url, port, mock_url)
                resolved = resolve(config_from(raw), root / f"api{i}", signer=HOSTS[i])
                servers.append(await nursery.start(functools.partial(serve_api, resolved)))
        rpc_url = rpc_urls[0]

        async def in_epoch_1() -> bool:
            status = (await http.get(f"{servers[0].public_url}/v1/status")).json()
            return (status["epoch"], status["stage"]) == (1, "inference")

        async def serving() -> bool:
            for server in servers:
                [node] = (await http.get(f"{server.admin_url}/admin/v1/nodes")).json()
                if (node["actual"], node["served_model"]) != ("INFERENCE", MODEL):
                    return False
            return True

        await each_block(rpc_url, in_epoch_1)
        await each_block(rpc_url, serving)
        yield ApiNetwork(servers, mocks, rpc_urls)
        nursery.cancel_scope.cancel()


async def _start_processes(nursery: trio.Nursery, http: httpx.AsyncClient, root: Path,
                           homes: list[NodeHome], rpc_ports: list[int], api_ports: list[int],
                           servers: list, mocks: list[str]) -> list[str]:
    """Each host's chain node, mock ML node and API node as processes (logs in `root`); the
    chain nodes' RPC URLs once every process answers."""
    rpc_urls = [f"http://127.0.0.1:{p}" for p in rpc_ports]
    for h in homes:
        await _spawn(nursery, [*gonka_command(), "chain", "start", "--home", str(h.root)],
                     root / f"{h.root.name}.log")
    mock_ports = free_ports(2)
    admin_ports = free_ports(2)
    for i in range(2):
        script = root / f"mock{i}.json"
        script.write_bytes(msgspec.json.encode(
            MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
        await _spawn(nursery, [sys.executable, "-m", "testermint_py.mock_mlnode", "--port",
                               str(mock_ports[i]), "--script", str(script),
                               "--send-interval", "0.02"], root / f"mock{i}.log")
        mocks.append(f"http://127.0.0.1:{mock_ports[i]}")
        key_file = root / f"host{i}.key"
        key_file.write_text(HOSTS[i].secret.hex())
        key_file.chmod(0o600)
        raw = api_config(i, homes[i], rpc_urls[i], api_ports[i], mocks[i])
        raw["admin"] = {"port": admin_ports[i]}
        raw["signer_key_file"] = str(key_file)
        config = root / f"api{i}.json"
        config.write_bytes(msgspec.json.encode(raw))
        await _spawn(nursery, [*gonka_command(), "api", "start", "--home", str(root / f"api{i}"),
                               "--config", str(config)], root / f"api{i}.log")
        servers.append(ApiEndpoints(f"http://127.0.0.1:{api_ports[i]}",
                                    f"http://127.0.0.1:{admin_ports[i]}"))
    with trio.fail_after(HANG_GUARD_S):
        for url in [f"{u}/status" for u in rpc_urls] + [f"{u}/api/v1/state" for u in mocks] + [
                f"{s.public_url}/v1/status" for s in servers]:
            while True:
                try:
                    if (await http.get(url)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.1)  # polling a process that is starting, not a timing
    return rpc_urls


async def _spawn(nursery: trio.Nursery, command: list[str], log: Path) -> None:
    """`command` as a child process writing to `log`, terminated when `nursery` is cancelled."""
    with open(log, "ab") as out:  # the child holds its own copy of the descriptor
        await nursery.start(functools.partial(
            trio.run_process, command, stdout=out, stderr=subprocess.STDOUT, check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}))
