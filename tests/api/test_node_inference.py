"""The API node's public inference path end to end, on a real chain.

One network per module, run by its own trio loop in a background thread (pytest-trio fixtures
cannot outlive a test): two chain nodes in-process (the two hosts' validators, short devnet
epochs, fast blocks), each host registered with its API node's URL and made a member of epoch 1
by sending its seed, PoC commit and PoC validation as txs (the PoC orchestration is not under
test here), and each host's API node (`serve_api`, in-process) with a mock ML node. Host 1 signs
with a warm key its account granted the inference messages. The tests reach the network through
HTTP only: the official openai client through `api.client`, raw signed requests through httpx,
and the chain RPC.
"""

from __future__ import annotations

import base64
import random
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import openai
import pytest
import trio

from api.client import gonka_async_http_client
from api.mlnodes import MlNodeLease, NoMlNode, StaticPool
from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from api.signing import sign_request
from chain.app.profiles import DEVNET_MODEL
from chain.crypto.hashing import blake3_256
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.home import NodeHome
from chain.node.node import ChainNode
from chain.node.setup import init_home, node_key, read_genesis, validator_key, write_genesis
from chain.rpc.client import RpcClient
from chain.types.codec import encode
from chain.types.genesis import ConsensusParams, GenesisAccount, GenesisValidator
from chain.types.inference import seed_commitment
from chain.types.msgs import (
    MlNodeSpec,
    MsgGrant,
    MsgPocCommit,
    MsgPocValidation,
    MsgRegisterParticipant,
    MsgSubmitSeed,
)
from chain.types.tx import TxBody, sign_tx
from testermint_py.cluster import free_ports, gonka_command
from testermint_py.mock_mlnode import DEFAULT_CONFIG, serve_mock_mlnode

MODEL = DEVNET_MODEL
PRICE = 10
CHAIN_ID = "api-node-1"
HOSTS = [PrivateKey(bytes([60 + i]) * 32) for i in range(2)]
WARM = PrivateKey(bytes([70]) * 32)            # host 1's warm key
DEV = PrivateKey(bytes([80]) * 32)             # a developer for the happy paths
DEV_ERRORS = PrivateKey(bytes([81]) * 32)      # one for the refusals
DEV_POOR = PrivateKey(bytes([82]) * 32)        # one that cannot pay
FUNDS = 10**12
POOR_FUNDS = 1_000
MESSAGES = [{"role": "user", "content": "Say something"}]
FAST_CONSENSUS = ConsensusParams(
    timeout_propose_ms=1000, timeout_propose_delta_ms=200, timeout_prevote_ms=300,
    timeout_prevote_delta_ms=200, timeout_precommit_ms=300, timeout_precommit_delta_ms=200,
    timeout_commit_ms=100)
EPOCHS = {"epoch_length": 2000, "first_poc_start": 12, "sprint_blocks": 2,
          "exchange_blocks": 3, "validation_blocks": 5, "set_new_validators_delay": 1,
          "inference_validation_cutoff": 1}
START_TAGS = ("inference/MsgStartInference", "inference/MsgFinishInference")


class SwitchablePool:
    """The configured static pool, which a test can drain (every lease: NoMlNode)."""

    def __init__(self, inner: StaticPool) -> None:
        self.inner = inner
        self.drained = False

    @asynccontextmanager
    async def lease(self, model: str) -> AsyncIterator[MlNodeLease]:
        if self.drained:
            raise NoMlNode(model, "drained by the test")
        async with self.inner.lease(model) as node:
            yield node


class SteeredRandom(random.Random):
    """Seeded randomness whose executor draw a test may fix: with every member at weight 100,
    `randrange(total)` = 100 x (the executor's rank by address) picks that executor."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.forced: int | None = None

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[override]
        # Forced only while it names a candidate (a second choice among fewer is random).
        if self.forced is not None and self.forced < args[0]:
            return self.forced
        return super().randrange(*args, **kwargs)


@dataclass
class Host:
    index: int
    key: PrivateKey
    signer: PrivateKey
    chain_home: Path
    api_home: Path
    api_port: int
    rpc_url: str = ""
    mlnode_url: str = ""
    server: ApiServer | None = None
    pool: SwitchablePool | None = None
    rng: SteeredRandom = field(default_factory=lambda: SteeredRandom(0))
    stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


class Network:
    """The network's trio loop runs in a thread; `call(fn)` runs `await fn()` in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ports = free_ports(6)
        self.hosts = [Host(i, HOSTS[i], WARM if i == 1 else HOSTS[i], root / f"chain{i}",
                           root / f"api{i}", ports[4 + i]) for i in range(2)]
        self._p2p = ports[:2]
        self._rpc = ports[2:4]
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._done: trio.Event | None = None
        self.thread = threading.Thread(target=self._thread, daemon=True)

    # -- the thread -------------------------------------------------------------------------

    def _thread(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as e:  # noqa: BLE001 - reported to the tests
            self.error = e
            self.ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._done = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._start(nursery)
            self.ready.set()
            await self._done.wait()
            nursery.cancel_scope.cancel()

    async def _start(self, nursery: trio.Nursery) -> None:
        homes = self._chain_homes()
        for host, home in zip(self.hosts, homes, strict=True):
            node = await nursery.start(ChainNode(home.root).run)
            host.rpc_url = node.rpc_url
        for host in self.hosts:
            cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0)
            host.mlnode_url = await nursery.start(serve_mock_mlnode, cfg)
            async with httpx.AsyncClient() as http:
                r = await http.post(f"{host.mlnode_url}/api/v1/inference/up",
                                    json={"model": MODEL})
                assert r.status_code == 200, r.text
        await self._join_epoch()
        for host in self.hosts:
            await self.start_api(host)

    def _chain_homes(self):
        homes = []
        for i in range(2):
            config = NodeConfig(p2p=P2PConfig(listen=f"127.0.0.1:{self._p2p[i]}",
                                              dial_backoff_max_s=0.5),
                                rpc=RpcConfig(listen=f"127.0.0.1:{self._rpc[i]}"))
            homes.append(init_home(self.root / f"chain{i}", CHAIN_ID, moniker=f"node{i}",
                                   config=config, profile="devnet"))
        genesis = read_genesis(homes[0])
        params = {k: dict(v) for k, v in genesis.app_params.items()}
        params["epochs"] = {**params.get("epochs", {}), **EPOCHS}
        params["inference"] = {**params.get("inference", {}), "grace_per_token_price": PRICE}
        genesis = msgspec.structs.replace(
            genesis, consensus=FAST_CONSENSUS, app_params=params,
            validators=tuple(GenesisValidator(name=f"node{i}", pubkey=validator_key(h).public_key,
                                              power=10, operator=HOSTS[i].address)
                             for i, h in enumerate(homes)),
            accounts=tuple(GenesisAccount(address=a, balance=b) for a, b in (
                (HOSTS[0].address, FUNDS), (HOSTS[1].address, FUNDS), (DEV.address, FUNDS),
                (DEV_ERRORS.address, FUNDS), (DEV_POOR.address, POOR_FUNDS))))
        ids = [node_key(h).id.hex() for h in homes]
        for i, h in enumerate(homes):
            write_genesis(h, genesis)
            peer = f'"{ids[1 - i]}@127.0.0.1:{self._p2p[1 - i]}"'
            text = h.config_file.read_text().replace("persistent_peers = []",
                                                     f"persistent_peers = [{peer}]")
            h.config_file.write_text(text)
        return homes

    async def _join_epoch(self) -> None:
        """Register both hosts, grant host 1's warm key, and run PoC 1 by hand."""
        rpc = RpcClient(self.hosts[0].rpc_url)
        try:
            await self._send(rpc, *[(h.key, MsgRegisterParticipant(
                participant=h.address, inference_url=h.public_url,
                validator_key=validator_key_of(h), worker_key=h.signer.public_key,
                ml_nodes=(MlNodeSpec(node_id="node0", models=(MODEL,)),))) for h in self.hosts],
                (HOSTS[1], MsgGrant(granter=HOSTS[1].address, grantee=WARM.address,
                                    msg_types=START_TAGS, expiration_height=None)))
            poc = (await rpc.query("epochs/current"))["poc"]
            await self._wait_height(rpc, poc["poc_start"])
            seeds = [(h.key, MsgSubmitSeed(participant=h.address, epoch=1,
                                           commitment=seed_commitment(h.address, 1,
                                                                      bytes(32))))
                     for h in self.hosts]
            commits = [(h.key, MsgPocCommit(participant=h.address, epoch=1, count=100,
                                            root=bytes([h.index + 1]) * 32))
                       for h in self.hosts]
            await self._send(rpc, *seeds, *commits)
            await self._wait_height(rpc, poc["commit_deadline"])
            await self._send(rpc, *[(h.key, MsgPocValidation(
                validator=h.address, participant=o.address, epoch=1, fraud=False, checked=10,
                failed=0)) for h in self.hosts for o in self.hosts if o is not h])
            await self._wait_height(rpc, poc["set_new_validators"] + 1)
            info = await rpc.query("epochs/current")
            assert info["effective_epoch"] == 1, info
        finally:
            await rpc.aclose()

    @staticmethod
    async def _send(rpc: RpcClient, *pairs) -> None:
        height = (await rpc.status()).latest_height
        for n, (key, msg) in enumerate(pairs):
            body = TxBody(chain_id=CHAIN_ID, messages=(msg,), memo=f"setup {n}",
                          timeout_height=height + 50)
            result = await rpc.broadcast(encode(sign_tx(body, key)), "commit")
            assert result.code == 0 and result.result.code == 0, result

    @staticmethod
    async def _wait_height(rpc: RpcClient, height: int) -> None:
        async with rpc.events(types=("none",)) as frames:
            if (await rpc.status()).latest_height >= height:
                return
            async for frame in frames:
                if frame.height >= height:
                    return

    async def start_api(self, host: Host) -> None:
        raw = {"account": host.address, "chain_rpc": host.rpc_url,
               "public_url": host.public_url,
               "public": {"host": "127.0.0.1", "port": host.api_port},
               "callbacks": {"port": 0}, "admin": {"port": 0},
               "ml_nodes": [{"id": "node0", "url": host.mlnode_url, "models": [MODEL]}],
               "limits": {"max_body_bytes": 256 * 1024}}
        resolved = resolve(config_from(raw), host.api_home, signer=host.signer)
        if host.pool is None:
            host.pool = SwitchablePool(StaticPool({"node0": (host.mlnode_url, (MODEL,))}))
        host.stopped = trio.Event()

        async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
            try:
                await serve_api(resolved, pool=host.pool, rng=host.rng,
                                task_status=task_status)
            finally:
                host.stopped.set()

        host.server = await self._nursery.start(run)
        await host.server.node.cache.current()

    async def restart_api(self, index: int) -> None:
        host = self.hosts[index]
        host.server.stop()
        await host.stopped.wait()
        await self.start_api(host)

    # -- the tests' side --------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(timeout=120)
        if self.error is not None:
            raise self.error
        assert self.ready.is_set(), "the network did not start in 120 s"

    def stop(self) -> None:
        if self.token is not None and self._done is not None:
            try:
                trio.from_thread.run_sync(self._done.set, trio_token=self.token)
            except trio.RunFinishedError:
                pass
        self.thread.join(timeout=30)

    async def call(self, fn, *args):
        """From a test's trio loop: `await fn(*args)` in the network's loop."""
        return await trio.to_thread.run_sync(
            lambda: trio.from_thread.run(fn, *args, trio_token=self.token))


def validator_key_of(host: Host) -> bytes:
    return validator_key(NodeHome(host.chain_home)).public_key


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("api-node-net"))
    net.start()
    yield net
    net.stop()


# -- helpers ---------------------------------------------------------------------------------


def developer_client(net: Network, ta: int, key: PrivateKey = DEV, **kw) -> openai.AsyncOpenAI:
    url = net.hosts[ta].public_url
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                              http_client=gonka_async_http_client(key, url, **kw))


def rpc(net: Network) -> RpcClient:
    return RpcClient(net.hosts[0].rpc_url)


async def balance(net: Network, key: PrivateKey) -> int:
    async with rpc(net) as c:
        return (await c.query("bank/balance", address=key.address))["amount"]


async def height(net: Network) -> int:
    async with rpc(net) as c:
        return (await c.status()).latest_height


async def wait_blocks(net: Network, n: int) -> None:
    target = await height(net) + n
    async with rpc(net) as c, c.events(types=("none",)) as frames:
        async for frame in frames:
            if frame.height >= target:
                return


async def finished_record(net: Network, inference_id: str) -> dict:
    """The chain record of `inference_id` once it is finished (read after each new block)."""
    url = net.hosts[0].public_url
    with trio.fail_after(60):  # a hang guard, not a timing assertion
        async with httpx.AsyncClient() as http, rpc(net) as c, \
                c.events(types=("none",)) as frames:
            async for _ in frames:
                r = await http.get(f"{url}/v1/chat/completions/{inference_id}")
                if r.status_code == 200 and r.json()["status"] == "finished":
                    return r.json()
    raise AssertionError("unreachable")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Captured:
    """The signed POSTs an httpx client sent (body and headers), through an event hook."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST":
            self.requests.append(request)


async def tokenize_count(net: Network, messages) -> int:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{net.hosts[0].mlnode_url}/tokenize",
                            json={"model": MODEL, "messages": messages})
        return r.json()["count"]


# -- the happy paths --------------------------------------------------------------------------


def steer(net: Network, ta: int, executor: int | None) -> None:
    """Make host `ta`'s next executor choices fall on host `executor` (None: random again)."""
    ranked = sorted(h.address for h in net.hosts)
    net.hosts[ta].rng.forced = (None if executor is None
                                else 100 * ranked.index(net.hosts[executor].address))


# Host 1 signs with a warm key: (1, 0) is an executor checking a warm transfer signature,
# (0, 0) and (1, 1) run the executor path in-process.
@pytest.mark.parametrize(("ta", "chosen"), [(0, 1), (1, 0), (0, 0), (1, 1)])
async def test_a_completion_is_served_recorded_on_chain_and_paid(network, ta, chosen):
    # Given a developer's openai client pointed at host `ta`'s API node, which picks `chosen`,
    captured = Captured()
    client = developer_client(network, ta, event_hooks={"request": [captured]})
    before = await balance(network, DEV)
    # when it asks for a completion,
    steer(network, ta, chosen)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, max_tokens=20)
    finally:
        steer(network, ta, None)
    reply = raw.parse()
    executor = raw.headers["x-executor-address"]
    assert executor == network.hosts[chosen].address
    # then the answer is OpenAI's shape, its id is the inference id, no logprobs unasked,
    assert reply.choices[0].message.content
    assert reply.choices[0].logprobs is None
    assert reply.usage.completion_tokens >= 1
    [request] = captured.requests
    assert reply.id == base64.b64decode(request.headers["Authorization"]).hex()
    # and the chain records it between the right parties with the real token counts;
    record = await finished_record(network, reply.id)
    assert record["requested_by"] == DEV.address
    assert record["transfer_agent"] == network.hosts[ta].address
    assert record["executor"] == executor in {h.address for h in network.hosts}
    assert record["prompt_hash"] == b64(blake3_256(request.content))
    assert record["prompt_tokens"] == reply.usage.prompt_tokens
    assert record["completion_tokens"] == reply.usage.completion_tokens
    assert record["max_tokens"] == 20
    # the TA escrowed (the body's length, an over-estimate of the prompt's tokens, + max_tokens)
    # x price without asking an ML node to count, and the developer paid the real cost.
    prompt_tokens = await tokenize_count(network, MESSAGES)
    assert prompt_tokens == reply.usage.prompt_tokens < len(request.content)
    assert record["escrow"] == (len(request.content) + 20) * PRICE
    cost = (reply.usage.prompt_tokens + reply.usage.completion_tokens) * PRICE
    assert record["actual_cost"] == cost
    assert await balance(network, DEV) == before - cost
    # The executor kept the payload whose hash the chain has, logprobs included.
    payload = next(h.server.node.payloads.get(bytes.fromhex(reply.id))
                   for h in network.hosts if h.address == executor)
    assert payload.request == request.content
    assert record["response_hash"] == b64(blake3_256(payload.response))
    assert msgspec.json.decode(payload.response)["choices"][0]["logprobs"]["content"]


async def test_a_developer_the_estimate_is_too_much_for_is_served_on_the_real_count(network):
    # Given a developer whose balance covers the real escrow but not the body-length estimate,
    body = chat_body(max_tokens=50)
    prompt_tokens = await tokenize_count(network, MESSAGES)
    assert (prompt_tokens + 50) * PRICE <= POOR_FUNDS < (len(body) + 50) * PRICE
    before = await balance(network, DEV_POOR)
    # when it asks for a completion,
    r = await post_signed(network, 0, body, key=DEV_POOR)
    # then the TA counted the prompt on its ML node, escrowed that, and served it.
    assert r.status_code == 200, r.text
    record = await finished_record(network, r.json()["id"])
    assert record["escrow"] == (prompt_tokens + 50) * PRICE
    assert await balance(network, DEV_POOR) == before - record["actual_cost"]


@pytest.mark.parametrize(("ta", "drained"), [(0, 1), (1, 0)])
async def test_an_executor_without_an_ml_node_is_passed_over_for_another(network, ta, drained):
    # Given host `drained` with no ML node free (it would answer 503), chosen first by `ta`,
    network.hosts[drained].pool.drained = True
    steer(network, ta, drained)
    try:
        # when the developer asks `ta` for a completion,
        r = await post_signed(network, ta, chat_body(), key=DEV)
    finally:
        steer(network, ta, None)
        network.hosts[drained].pool.drained = False
    # then the other host executes it and the chain records that one as the executor.
    assert r.status_code == 200, r.text
    other = network.hosts[1 - drained].address
    assert r.headers["x-executor-address"] == other
    assert (await finished_record(network, r.json()["id"]))["executor"] == other


async def test_a_stream_is_relayed_and_the_escrow_then_the_refund_move(network):
    client = developer_client(network, 0)
    async with rpc(network) as c:
        start = (await c.status()).latest_height + 1
    before = await balance(network, DEV)
    # When the developer streams a completion with logprobs (top 2) but no usage,
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=100, stream=True, logprobs=True,
        top_logprobs=2)
    chunks = [chunk async for chunk in stream]
    # then the chunks carry the text, the inference id and the asked logprobs, no usage;
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    ids = {c.id for c in chunks}
    assert len(ids) == 1
    [inference_id] = ids
    assert all(c.usage is None for c in chunks)
    with_logprobs = [c for c in chunks if c.choices and c.choices[0].logprobs]
    assert with_logprobs
    assert all(len(entry.top_logprobs) == 2
               for c in with_logprobs for entry in c.choices[0].logprobs.content)
    # and on chain: exactly the escrow left the developer at the start, the refund came back
    # at the finish, and the balance moved by the cost.
    record = await finished_record(network, inference_id)
    completion = sum(len(c.choices[0].logprobs.content) for c in with_logprobs)
    assert record["completion_tokens"] == completion
    cost = (record["prompt_tokens"] + completion) * PRICE
    assert record["actual_cost"] == cost
    moves = []
    async with rpc(network) as c, c.events(from_height=start, types=("transfer",)) as frames:
        async for frame in frames:
            for e in frame.events:
                a = {x.key: x.value for x in e.attributes}
                if DEV.address in (a["sender"], a["recipient"]):
                    moves.append(int(a["amount"]) * (-1 if a["sender"] == DEV.address else 1))
            if frame.height >= record["completed_height"]:
                break
    assert moves == [-record["escrow"], record["escrow"] - cost]
    assert await balance(network, DEV) == before - cost


# -- the refusals -----------------------------------------------------------------------------


async def post_signed(net: Network, ta: int, body: bytes, key: PrivateKey = DEV_ERRORS, *,
                      headers: dict[str, str] | None = None,
                      timestamp_ns: int | None = None) -> httpx.Response:
    host = net.hosts[ta]
    signed = headers or sign_request(key, body, host.address, timestamp_ns or time.time_ns())
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(f"{host.public_url}/v1/chat/completions", content=body,
                               headers={**signed, "Content-Type": "application/json"})


def chat_body(**fields) -> bytes:
    return msgspec.json.encode({"model": MODEL, "messages": MESSAGES, "max_tokens": 8,
                                **fields})


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


async def test_every_refusal_is_clear_and_changes_no_balance(network):
    before = {k.address: await balance(network, k) for k in (DEV_ERRORS, DEV_POOR)}
    # 401: the plain openai client (a bearer token, no signature),
    plain = openai.AsyncOpenAI(base_url=f"{network.hosts[0].public_url}/v1", api_key="sk-x",
                               max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        await plain.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert e.value.code == "missing_signature"
    # and a body changed after signing;
    signed = sign_request(DEV_ERRORS, chat_body(), network.hosts[0].address, time.time_ns())
    r = await post_signed(network, 0, chat_body(max_tokens=9), headers=signed)
    assert (r.status_code, error_of(r)["code"]) == (401, "invalid_signature")
    # 400: a request time an hour old (the chain's window is 300 s),
    r = await post_signed(network, 0, chat_body(), timestamp_ns=time.time_ns() - 3600 * 10**9)
    assert (r.status_code, error_of(r)["code"]) == (400, "request_too_old")
    assert "chain time" in error_of(r)["message"]
    # 402: a developer who cannot pay the escrow,
    r = await post_signed(network, 1, chat_body(max_tokens=500), key=DEV_POOR)
    assert (r.status_code, error_of(r)["code"]) == (402, "insufficient_balance")
    # 404: a model the epoch does not serve,
    r = await post_signed(network, 0, chat_body(model="no/such-model"))
    assert (r.status_code, error_of(r)["code"]) == (404, "model_not_found")
    # 413: a body over the node's limit,
    r = await post_signed(network, 0, chat_body(messages=[{"role": "user",
                                                           "content": "x" * 300_000}]))
    assert (r.status_code, error_of(r)["code"]) == (413, "request_too_large")
    # 429: more than this transfer agent's bandwidth share, with Retry-After,
    r = await post_signed(network, 0, chat_body(max_tokens=200_000))
    assert (r.status_code, error_of(r)["code"]) == (429, "capacity_reached")
    assert int(r.headers["retry-after"]) >= 1
    # 503: no ML node can serve the model on any host (whichever executor is chosen).
    for host in network.hosts:
        host.pool.drained = True
    try:
        for ta in (0, 1, 0, 1):
            r = await post_signed(network, ta, chat_body())
            assert r.status_code == 503, r.text
            assert "ML node" in error_of(r)["message"]
    finally:
        for host in network.hosts:
            host.pool.drained = False
    # 502: the ML node answers something that is not a chat completion.
    async with httpx.AsyncClient() as http:
        for host in network.hosts:
            await http.post(f"{host.mlnode_url}/mock/script",
                            json={"invalid_json_paths": ["/v1/chat/completions"]})
        try:
            for ta in (0, 1, 0, 1):
                r = await post_signed(network, ta, chat_body())
                assert r.status_code == 502, r.text
                assert error_of(r)["code"] in ("executor_failed", "ml_node_failed")
                assert "not a JSON object" in error_of(r)["message"]
        finally:
            for host in network.hosts:
                await http.post(f"{host.mlnode_url}/mock/script",
                                json={"invalid_json_paths": []})
    # Nothing reached the chain: a stray MsgStartInference would be in within two blocks.
    await wait_blocks(network, 3)
    assert {k.address: await balance(network, k) for k in (DEV_ERRORS, DEV_POOR)} == before


async def test_a_replayed_request_is_refused_even_after_a_restart(network):
    body = chat_body(max_tokens=5)
    signed = sign_request(DEV_ERRORS, body, network.hosts[1].address, time.time_ns())
    # Given a signed request served once (and paid),
    first = await post_signed(network, 1, body, headers=signed)
    assert first.status_code == 200, first.text
    await finished_record(network, first.json()["id"])
    before = await balance(network, DEV_ERRORS)
    # when the same bytes come again, they are refused,
    again = await post_signed(network, 1, body, headers=signed)
    assert (again.status_code, error_of(again)["code"]) == (400, "request_replayed")
    # and still after the API node restarts (the cache is on disk).
    await network.call(network.restart_api, 1)
    after_restart = await post_signed(network, 1, body, headers=signed)
    assert (after_restart.status_code, error_of(after_restart)["code"]) == \
        (400, "request_replayed")
    await wait_blocks(network, 3)
    assert await balance(network, DEV_ERRORS) == before


# -- the other public endpoints -----------------------------------------------------------------


async def test_status_models_pricing_participants_and_epochs(network):
    url = network.hosts[0].public_url
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"{url}/v1/status")).json()
        assert status["address"] == network.hosts[0].address
        assert status["chain_id"] == CHAIN_ID and status["epoch"] == 1
        assert status["stage"] == "inference" and status["public_url"] == url
        models = (await http.get(f"{url}/v1/models")).json()
        assert [m["id"] for m in models["data"]] == [MODEL]
        pricing = (await http.get(f"{url}/v1/pricing")).json()
        assert [(m["id"], m["price_per_token"]) for m in pricing["models"]] == [(MODEL, PRICE)]
        assert pricing["models"][0]["units_of_compute_per_token"] >= 1
        epoch_group = (await http.get(f"{url}/v1/epochs/1")).json()["group"]
        assert pricing["unit_of_compute_price"] == epoch_group["unit_of_compute_price"] > 0
        listing = (await http.get(f"{url}/v1/participants")).json()["participants"]
        assert {(p["address"], p["inference_url"], p["weight"]) for p in listing} == \
            {(h.address, h.public_url, 100) for h in network.hosts}
        one = (await http.get(f"{url}/v1/participants/{network.hosts[1].address}")).json()
        assert one["balance"] >= 0 and one["weight"] == 100
        epoch = (await http.get(f"{url}/v1/epochs/latest")).json()
        assert epoch["epoch"] == 1 and epoch["group"]["total_weight"] == 200
        assert (await http.get(f"{url}/v1/epochs/99")).status_code == 404
        missing = await http.get(f"{url}/v1/chat/completions/{'00' * 64}")
        assert missing.status_code == 404 and missing.json()["error"]["message"]
    # The openai client lists the models too.
    assert [m.id async for m in developer_client(network, 1).models.list()] == [MODEL]


# -- the command line -----------------------------------------------------------------------------


async def test_gonka_api_start_serves_until_sigterm(network, tmp_path):
    # Given a home with a config file and a key file (a second API node for host 0),
    home = tmp_path / "home"
    (home / "api").mkdir(parents=True)
    (home / "api" / "host0.key").write_text(HOSTS[0].secret.hex())
    public, callbacks, admin = free_ports(3)
    (home / "api" / "config.toml").write_text(
        f'signer_key_file = "api/host0.key"\nchain_rpc = "{network.hosts[0].rpc_url}"\n'
        f'[public]\nhost = "127.0.0.1"\nport = {public}\n[callbacks]\nport = {callbacks}\n'
        f'[admin]\nport = {admin}\n')
    process = await trio.lowlevel.open_process(
        [*gonka_command(), "api", "start", "--home", str(home), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # when it runs, it says where it serves, and answers there;
        output = b""
        with trio.fail_after(60):  # a hang guard
            while b"running" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
        assert f"http://127.0.0.1:{public}".encode() in output
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"http://127.0.0.1:{public}/v1/status")).json()
            assert status["address"] == HOSTS[0].address
            health = await http.get(f"http://127.0.0.1:{admin}/health")
            assert health.status_code == 200
        # then SIGTERM stops it cleanly.
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
