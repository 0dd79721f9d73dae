"""A network of N participants for acceptance scenarios: each a chain node (a validator of the
genesis), an API node (`gonka api start`) and a mock ML node (`python -m
testermint_py.mock_mlnode`), every one its own process, started by a backend.

    async with Network.create(tmp_path, n=3, params={...}, mocks=[MockScript(...), ...]) as net:
        await net.wait_ready()                     # epoch 1's inference stage, every node serving
        async with net.developer_client(0) as http:   # signed requests to participant 0's API
            ...
        await net.check_invariants()

`create` builds the homes exactly as operators would (one genesis with every participant a
validator and a funded account, plus funded developer accounts; each API node's config file and
signer key file; each mock's script file), then starts every process through the backend:
`process` (127.0.0.1, free ports) or `netns` (one Linux network namespace per participant, its own
address on a bridge; `partition(i)` / `heal(i)` cut and restore its link). `docker_compose()`
writes the same network as a compose file (one service per process) for a Docker engine.

Everything is observed through public interfaces (chain RPC, the API nodes' public and admin
HTTP, the mocks' /mock routes). Waits follow blocks through the chain's event stream, never
sleeps. After a scenario, `check_invariants()` checks that every running node agrees on every
block (hence app hash), that the supply is the genesis supply plus what was minted minus what
was burned, and that no module holds coins its records do not account for (open escrow
included).

This module must never reach into a running process's memory: a scenario that needs to know
something asks a public interface.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import trio

from api.client import gonka_async_http_client
from chain.app.profiles import DEVNET_MODEL
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.home import NodeHome
from chain.node.setup import init_home, node_key, read_genesis, validator_key, write_genesis
from chain.rpc.client import RpcClient, RpcError
from chain.types.genesis import ConsensusParams, Genesis, GenesisAccount, GenesisValidator
from testermint_py.clients import AdminClient, PublicClient
from testermint_py.cluster import TEST_CONSENSUS, free_ports, gonka_command
from testermint_py.mock_mlnode import MockScript

MODEL = DEVNET_MODEL
FUNDS = 10**15
HANG_GUARD_S = 240          # a hang guard for waits, not a timing assertion
ADMIN_TOKEN = "testermint-admin"
Part = Literal["chain", "api", "mock"]
PARTS: tuple[Part, ...] = ("chain", "mock", "api")   # start order; stop order is the reverse

# Test-paced epochs: long enough that a scenario's requests all fall in epoch 1's inference
# stage unless it asks for more epochs (then it sets epochs.epoch_length).
TEST_EPOCHS = {"epoch_length": 2000, "first_poc_start": 20}


class NetworkError(AssertionError):
    """The network did not get where a scenario waited for it to be (with the logs' tails)."""


@dataclass
class ParticipantSpec:
    """What a scenario asks of one participant (defaults: an honest host of weight 150)."""

    mock: MockScript = field(default_factory=lambda: MockScript(weight=150,
                                                                weight_per_batch=150))
    power: int = 10                 # its validator's power in the genesis
    models: tuple[str, ...] = (MODEL,)
    balance: int = FUNDS


@dataclass
class Participant:
    index: int
    key: PrivateKey                 # account, validator operator and API signer
    spec: ParticipantSpec
    chain_home: NodeHome
    address: str                    # where its servers listen (127.0.0.1, or its netns address)
    ports: dict[str, int]           # p2p, rpc, public, callbacks, admin, mock
    api_home: Path
    api_config: Path
    mock_script: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.key.address

    @property
    def name(self) -> str:
        return f"p{self.index}"

    def url(self, port: str) -> str:
        return f"http://{self.address}:{self.ports[port]}"

    @property
    def rpc_url(self) -> str:
        return self.url("rpc")

    @property
    def public_url(self) -> str:
        return self.url("public")

    @property
    def admin_url(self) -> str:
        return self.url("admin")

    @property
    def mock_url(self) -> str:
        return self.url("mock")

    def running(self, part: Part) -> bool:
        process = self.processes.get(part)
        return process is not None and process.poll() is None


class Backend:
    """Where a participant's processes run and at what address. `process`: this machine's
    loopback, every server on its own free port."""

    name = "process"

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def address(self, index: int) -> str:
        return "127.0.0.1"

    def ports(self, index: int) -> dict[str, int]:
        names = ("p2p", "rpc", "public", "callbacks", "admin", "mock")
        return dict(zip(names, free_ports(len(names)), strict=True))

    def command(self, index: int, argv: list[str]) -> list[str]:
        """`argv` as it must be run for participant `index`."""
        return argv

    async def partition(self, index: int) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot partition a participant")

    async def heal(self, index: int) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot partition a participant")


# The ports of a participant alone on its own address (the netns backend): the defaults.
STANDARD_PORTS = {"p2p": 26656, "rpc": 26657, "public": 9000, "callbacks": 9100, "admin": 9200,
                  "mock": 8080}


class NetnsBackend(Backend):
    """One Linux network namespace per participant, each with its own address on a bridge
    (testermint_py.netns; root only), every server on its standard port; the test process
    reaches them all from the root namespace. `partition(i)` takes participant i's link down
    (nobody reaches it, open connections stall), `heal(i)` brings it back."""

    name = "netns"

    def __init__(self, n: int, *, prefix: str = "tm", subnet: str = "10.77.0.0/24") -> None:
        from testermint_py.netns import NetnsLab

        self.n = n
        self.lab = NetnsLab(prefix, subnet)
        self.hosts: list = []

    async def __aenter__(self) -> NetnsBackend:
        await self.lab.__aenter__()
        try:
            self.hosts = [await self.lab.add_host(f"p{i}") for i in range(self.n)]
        except BaseException:
            await self.lab.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.lab.__aexit__(*exc)

    def address(self, index: int) -> str:
        return self.hosts[index].address

    def ports(self, index: int) -> dict[str, int]:
        return dict(STANDARD_PORTS)

    def command(self, index: int, argv: list[str]) -> list[str]:
        return self.hosts[index].command(*argv)

    async def partition(self, index: int) -> None:
        await self.lab.cut(self.hosts[index])

    async def heal(self, index: int) -> None:
        await self.lab.heal(self.hosts[index])


@dataclass
class Network:
    root: Path
    chain_id: str
    participants: list[Participant]
    developers: list[PrivateKey]
    backend: Backend
    genesis_supply: int

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, root: Path, n: int = 3, *, specs: Sequence[ParticipantSpec] | None = None,
              params: dict[str, dict] | None = None,
              consensus: ConsensusParams = TEST_CONSENSUS, developers: int = 1,
              developer_funds: int = FUNDS, chain_id: str = "testermint-1",
              backend: Backend | None = None, joiners: int = 0) -> Network:
        """The network's homes under `root`: n participants (`specs` per participant, or the
        default), one genesis; nothing started. `params` updates the devnet profile per module
        (TEST_EPOCHS unless `epochs` is given); `joiners` accounts are funded in the genesis for
        hosts that `join` later."""
        specs = list(specs) if specs is not None else [ParticipantSpec() for _ in range(n)]
        return _build(Path(root), specs, params or {}, consensus, developers, developer_funds,
                      chain_id, backend or Backend(), joiners)

    @classmethod
    @asynccontextmanager
    async def create(cls, root: Path, n: int = 3, *, start: bool = True,
                     check_on_exit: bool = True, **options: Any) -> AsyncIterator[Network]:
        """`build`, then (unless `start` is false) every process started and answering; the
        backend set up before and torn down after, every process stopped on exit. A scenario
        that ends without an error is followed by `check_invariants()` over the chain nodes
        still running (unless `check_on_exit` is false)."""
        backend = options.pop("backend", None) or Backend()
        async with backend:
            net = cls.build(root, n, backend=backend, **options)
            try:
                if start:
                    net.start_all()
                    await net.wait_up()
                yield net
                if check_on_exit and any(p.running("chain") for p in net.participants):
                    await net.check_invariants()
            finally:
                net.stop_all()

    # -- processes -----------------------------------------------------------------------------

    def argv(self, p: Participant, part: Part) -> list[str]:
        """The command line of participant p's `part` (before the backend's prefix)."""
        if part == "chain":
            return [*gonka_command(), "chain", "start", "--home", str(p.chain_home.root)]
        if part == "mock":
            return [sys.executable, "-m", "testermint_py.mock_mlnode", "--host", p.address,
                    "--port", str(p.ports["mock"]), "--script", str(p.mock_script),
                    "--send-interval", "0.02"]
        return [*gonka_command(), "api", "start", "--home", str(p.api_home),
                "--config", str(p.api_config)]

    def log_path(self, i: int, part: Part) -> Path:
        return self.root / "logs" / f"p{i}-{part}.log"

    def start(self, i: int, parts: Sequence[Part] = PARTS) -> None:
        """Start participant i's processes (those not running), in dependency order."""
        p = self.participants[i]
        for part in parts:
            if p.running(part):
                continue
            path = self.log_path(i, part)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as log:
                p.processes[part] = subprocess.Popen(
                    self.backend.command(i, self.argv(p, part)), stdout=log,
                    stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def stop(self, i: int, parts: Sequence[Part] = PARTS[::-1], *, kill: bool = False) -> None:
        """SIGTERM (a clean stop) or SIGKILL (a crash) participant i's processes, and wait."""
        p = self.participants[i]
        for part in parts:
            process = p.processes.pop(part, None)
            if process is None or process.poll() is not None:
                continue
            if not kill:
                os.kill(process.pid, signal.SIGCONT)  # a paused process must see its SIGTERM
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def join(self, spec: ParticipantSpec | None = None) -> int:
        """A new host joining the running network (a `joiners` account of the genesis): its
        chain node (not a validator: it syncs the chain from its peers), its mock ML node and
        its API node, which registers it with its consensus key so that it can take part in the
        next PoC. Started; its index."""
        i = len(self.participants)
        p = _participant(self.root, i, spec or ParticipantSpec(), participant_key(i),
                         self.chain_id, self.backend)
        _configure(p, read_genesis(self.participants[0].chain_home), self.participants)
        self.participants.append(p)
        self.start(i)
        return i

    def start_all(self) -> None:
        for i in range(len(self.participants)):
            self.start(i)

    def stop_all(self) -> None:
        for i in range(len(self.participants)):
            self.stop(i)

    def pause(self, i: int, part: Part) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a hung node)."""
        os.kill(self.participants[i].processes[part].pid, signal.SIGSTOP)

    def resume(self, i: int, part: Part) -> None:
        os.kill(self.participants[i].processes[part].pid, signal.SIGCONT)

    def docker_compose(self, path: Path, **options: Any) -> Path:
        """This network as a compose file at `path` (testermint_py.compose: one service per
        process; build the network with `compose.ComposeBackend` for its addresses)."""
        from testermint_py.compose import write_compose

        return write_compose(self, path, **options)

    async def partition(self, i: int) -> None:
        """Cut participant i off from every other (netns backend)."""
        await self.backend.partition(i)

    async def heal(self, i: int) -> None:
        await self.backend.heal(i)

    def log_tail(self, i: int, part: Part, lines: int = 25) -> str:
        path = self.log_path(i, part)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _logs(self) -> str:
        return "\n".join(f"--- {p.name} {part}:\n{self.log_tail(p.index, part, 12)}"
                         for p in self.participants for part in PARTS)

    # -- clients -------------------------------------------------------------------------------
    # (A client per call: a network may outlive the trio loop of one test and serve the next.)

    async def _http(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.request(method, url, **kw)

    def rpc(self, i: int = 0) -> RpcClient:
        return RpcClient(self.participants[i].rpc_url, timeout=10)

    def developer_client(self, i: int = 0, developer: int = 0, **options: Any
                         ) -> httpx.AsyncClient:
        """An httpx client that signs as developer `developer` for participant i's API node
        (the `openai` package takes it as `http_client`)."""
        p = self.participants[i]
        options.setdefault("timeout", 60)
        return gonka_async_http_client(self.developers[developer], p.public_url,
                                       transfer_address=p.account, **options)

    def admin_client(self, i: int) -> AdminClient:
        """Participant i's admin server, typed (testermint_py.clients)."""
        p = self.participants[i]
        return AdminClient(p.admin_url, ADMIN_TOKEN if p.address != "127.0.0.1" else None)

    def public_client(self, i: int) -> PublicClient:
        """Participant i's public read endpoints, typed."""
        return PublicClient(self.participants[i].public_url)

    async def admin(self, i: int, method: str, path: str, body: Any = None) -> httpx.Response:
        """An admin-server request to participant i (`path` under /admin/v1/)."""
        return await self._http(method, f"{self.participants[i].admin_url}/admin/v1/"
                                       f"{path.lstrip('/')}", json=body,
                                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    async def set_mock(self, i: int, **fields: Any) -> dict:
        """Change fields of participant i's mock script at run time; the script now."""
        r = await self._http("POST", f"{self.participants[i].mock_url}/mock/script",
                             json=fields)
        if r.status_code != 200:
            raise NetworkError(f"mock {i} refused {fields}: {r.status_code} {r.text}")
        return r.json()

    async def query(self, path: str, i: int = 0, **params: str) -> Any:
        async with self.rpc(i) as rpc:
            return await rpc.query(path, **params)

    async def balance(self, address: str, i: int = 0) -> int:
        return int((await self.query("bank/balance", i, address=address))["amount"])

    async def status(self, i: int = 0) -> dict:
        return (await self._http("GET", f"{self.participants[i].public_url}/v1/status")).json()

    # -- waiting -------------------------------------------------------------------------------

    async def wait_up(self) -> None:
        """Every process answers on its port."""
        with trio.move_on_after(HANG_GUARD_S) as scope:
            for p in self.participants:
                for part, url in (("chain", f"{p.rpc_url}/status"),
                                  ("mock", f"{p.mock_url}/mock/stats"),
                                  ("api", f"{p.public_url}/v1/status")):
                    while True:
                        if p.processes.get(part) is not None and not p.running(part):
                            raise NetworkError(f"{p.name} {part} exited:\n"
                                               f"{self.log_tail(p.index, part)}")
                        try:
                            if (await self._http("GET", url)).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        await trio.sleep(0.1)  # polling a process that is starting
        if scope.cancelled_caught:
            raise NetworkError(f"the network did not come up:\n{self._logs()}")

    async def each_block(self, check: Callable[[], Awaitable[Any]], *, i: int = 0,
                         what: str | Callable[[], str] = "a condition") -> Any:
        """`check()`'s first truthy answer, asked now and after every new block of node i."""
        with trio.move_on_after(HANG_GUARD_S):
            while True:
                try:
                    async with self.rpc(i) as rpc, rpc.events(types=("none",)) as frames:
                        if answer := await check():
                            return answer
                        async for _ in frames:
                            if answer := await check():
                                return answer
                except (httpx.HTTPError, OSError, RpcError):
                    # Node i (or what `check` asks) is starting or restarting: ask again.
                    await trio.sleep(0.1)
        what = what() if callable(what) else what
        raise NetworkError(f"gave up waiting for {what}:\n{self._logs()}")

    async def wait_height(self, height: int, *, i: int = 0) -> int:
        async def reached() -> int | None:
            async with self.rpc(i) as rpc:
                h = (await rpc.status()).latest_height
            return h if h >= height else None
        return await self.each_block(reached, i=i, what=f"height {height} on p{i}")

    async def wait_stage(self, epoch: int, stage: str, *, i: int = 0) -> dict:
        """Participant i's API node reports `epoch` (or later) in `stage`."""
        async def there() -> dict | None:
            s = await self.status(i)
            if s["epoch"] is not None and (s["epoch"], s["stage"]) >= (epoch, "") and (
                    s["epoch"] > epoch or s["stage"] == stage):
                return s
            return None
        return await self.each_block(there, i=i, what=f"epoch {epoch} stage {stage}")

    async def wait_ready(self, epoch: int = 1) -> None:
        """Epoch `epoch`'s inference stage with every running API node's ML nodes serving
        (the default model at least)."""
        for p in self.participants:
            if p.running("api"):
                await self.wait_stage(epoch, "inference", i=p.index)

        async def serving() -> bool:
            for p in self.participants:
                if not p.running("api"):
                    continue
                nodes = (await self.admin(p.index, "GET", "nodes")).json()
                if not any(n["actual"] == "INFERENCE" for n in nodes):
                    return False
            return True
        await self.each_block(serving, what="every ML node serving")

    # -- invariants ----------------------------------------------------------------------------

    async def check_invariants(self, nodes: Sequence[int] | None = None) -> None:
        """Every running chain node in `nodes` (default: all) agrees on every block both hold;
        supply == genesis supply + minted - burned; each module's coins match its records."""
        nodes = [i for i in (nodes if nodes is not None else range(len(self.participants)))
                 if self.participants[i].running("chain")]
        if not nodes:
            raise NetworkError("no chain node is running")
        heights = []
        for i in nodes:
            async with self.rpc(i) as rpc:
                heights.append((await rpc.status()).latest_height)
        top = min(heights)
        hashes: dict[int, list[str]] = {}
        for i in nodes:
            async with self.rpc(i) as rpc:
                for h in range(1, top + 1):
                    block = await rpc.block(h)
                    if block is None:
                        continue   # pruned or state-synced past it
                    hashes.setdefault(h, []).append(block.hash)
        forks = {h: v for h, v in hashes.items() if len(set(v)) > 1}
        if forks:
            raise NetworkError(f"nodes {nodes} disagree at heights {sorted(forks)[:10]}")
        async with self.rpc(nodes[0]) as rpc:
            # The supply as of some height H (queries read the latest state), against the
            # genesis supply and every mint and burn event up to H.
            view = await rpc.query_view("bank/invariants")
            bank, at = msgspec.json.decode(view.value), view.height
            minted = burned = 0
            async with rpc.events(from_height=1, types=("mint", "burn")) as frames:
                async for frame in frames:
                    for event in frame.events:
                        amount = int({a.key: a.value for a in event.attributes}["amount"])
                        if event.type == "mint":
                            minted += amount
                        else:
                            burned += amount
                    if frame.height >= at:
                        break
            supply = int(bank["supply"])
            expected = self.genesis_supply + minted - burned
            if supply != expected:
                raise NetworkError(f"supply {supply} at height {at} != genesis "
                                   f"{self.genesis_supply} + minted {minted} - burned {burned}")
            for module in ("bank", "inference", "rewards"):
                answer = await rpc.query(f"{module}/invariants")
                if not (answer.get("holds") or answer.get("ok")):
                    raise NetworkError(f"{module} invariants broken: {answer}")


def _build(root: Path, specs: list[ParticipantSpec], params: dict[str, dict],
           consensus: ConsensusParams, developers: int, developer_funds: int, chain_id: str,
           backend: Backend, joiners: int) -> Network:
    keys = [participant_key(i) for i in range(len(specs))]
    devs = [PrivateKey(bytes([200 + i]) * 32) for i in range(developers)]
    participants = [_participant(root, i, spec, key, chain_id, backend)
                    for i, (spec, key) in enumerate(zip(specs, keys, strict=True))]
    genesis = read_genesis(participants[0].chain_home)
    app_params = {k: dict(v) for k, v in genesis.app_params.items()}
    for module, values in {"epochs": TEST_EPOCHS, **params}.items():
        app_params[module] = {**app_params.get(module, {}), **values}
    accounts = [GenesisAccount(address=p.account, balance=p.spec.balance) for p in participants]
    # Hosts that join later (Network.join) are funded now, as an operator's faucet would.
    accounts += [GenesisAccount(address=participant_key(len(specs) + j).address, balance=FUNDS)
                 for j in range(joiners)]
    accounts += [GenesisAccount(address=k.address, balance=developer_funds) for k in devs]
    genesis = msgspec.structs.replace(
        genesis, chain_id=chain_id, consensus=consensus, app_params=app_params,
        validators=tuple(GenesisValidator(name=p.name,
                                          pubkey=validator_key(p.chain_home).public_key,
                                          power=p.spec.power, operator=p.account)
                         for p in participants),
        accounts=tuple(accounts))
    genesis.validate()
    for p in participants:
        _configure(p, genesis, participants)
    return Network(root, chain_id, participants, devs, backend,
                   sum(a.balance for a in accounts))


def participant_key(i: int) -> PrivateKey:
    """Participant i's account key (deterministic: a scenario can name a joiner in advance)."""
    return PrivateKey(bytes([100 + i]) * 32)


def _participant(root: Path, i: int, spec: ParticipantSpec, key: PrivateKey, chain_id: str,
                 backend: Backend) -> Participant:
    """Participant i's chain home (node key, consensus key, config) and its file paths."""
    address, ports = backend.address(i), backend.ports(i)
    config = NodeConfig(moniker=f"p{i}", p2p=P2PConfig(listen=f"{address}:{ports['p2p']}",
                                                       dial_backoff_max_s=0.5),
                        rpc=RpcConfig(listen=f"{address}:{ports['rpc']}"))
    home = init_home(root / f"p{i}" / "chain", chain_id, moniker=f"p{i}", config=config,
                     profile="devnet")
    return Participant(index=i, key=key, spec=spec, chain_home=home, address=address,
                       ports=ports, api_home=root / f"p{i}" / "api",
                       api_config=root / f"p{i}" / "api.json",
                       mock_script=root / f"p{i}" / "mock.json")


def _configure(p: Participant, genesis: Genesis, others: Sequence[Participant]) -> None:
    """Write p's genesis, its peers (every other participant), its mock script, its API
    node's config and signer key file."""
    write_genesis(p.chain_home, genesis)
    peers = ", ".join(f'"{node_key(q.chain_home).id.hex()}@{q.address}:{q.ports["p2p"]}"'
                      for q in others if q is not p)
    text = p.chain_home.config_file.read_text()
    p.chain_home.config_file.write_text(text.replace("persistent_peers = []",
                                                     f"persistent_peers = [{peers}]"))
    p.mock_script.write_bytes(msgspec.json.encode(p.spec.mock))
    key_file = p.api_config.parent / "signer.key"
    key_file.write_text(p.key.secret.hex())
    key_file.chmod(0o600)
    p.api_config.write_text(json.dumps(_api_config(p, key_file), indent=2))


def _api_config(p: Participant, key_file: Path) -> dict:
    """Participant p's API node settings as an operator would write them (test-paced)."""
    return {"account": p.account, "chain_rpc": p.rpc_url, "signer_key_file": str(key_file),
            "public_url": p.public_url,
            "public": {"host": p.address, "port": p.ports["public"]},
            # The mock posts its PoC batches from the same host (or namespace): loopback.
            "callbacks": {"host": "127.0.0.1", "port": p.ports["callbacks"]},
            # Off loopback (netns) the admin server requires its token.
            "admin": {"host": p.address, "port": p.ports["admin"],
                      **({"token": ADMIN_TOKEN} if p.address != "127.0.0.1" else {})},
            "validator_key": validator_key(p.chain_home).public_key.hex(),
            "ml_nodes": [{"id": "mock", "url": p.mock_url, "models": list(p.spec.models)}],
            "broker": {"poll_interval_s": 1.0, "retry_delay_s": 0.05},
            "poc": {"commit_every_blocks": 2, "proof_timeout_s": 10.0}}
