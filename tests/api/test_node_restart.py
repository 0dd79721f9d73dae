"""Restarting a host's API node mid-epoch loses no pending transaction and no validation duty
(issue 6).

The network of test_node_network.py (two chain validators from genesis, each host's API node as
`gonka api start` runs it, over its own mock ML node), with three things set for the scenarios:

* host A's API node talks to the chain through `Relay`, a second RPC endpoint of chain node 0
  (the real RPC server over the node's real view) whose faults the test switches: a full
  mempool (broadcasts refused with the chain's "mempool full", a retryable answer), lost
  answers (broadcasts reach the mempool, but A hears nothing back, nor of its txs), and queries
  that hang until released. A's config simply names the relay as its chain RPC;
* the transfer agents send every inference to host B unless a test says otherwise (their
  random choice is steered), and the validation params make every inference certain to be
  checked (p = 1), so that host A must validate each one B executes, and B each one A executes;
* host A's mock ML node can be told to hang its replays (its `/mock/script`).

Host A's `serve_api` is then cancelled as a crash would cancel it (no drain: its nursery goes,
whatever was in flight), and started again from the same home and config, mid-epoch. Everything
after is observed through public interfaces: the chain RPC's queries (`inference/inference`,
`bank/balance`) and its committed blocks (every tx ever included, failed ones too, so that a
message sent twice would show), the RPC calls host A made (the relay's log), A's `/v1/status`,
the mock ML node's request counts. "Exactly once" is checked once A has sent what it had to
(`quiesced`: one more inference validated by A, whose outbox sends in order).

Cost: one chain from genesis through epoch 1's PoC per test (about 35 blocks), then the crash
and restart; about 15 s each on a developer machine.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import httpx
import msgspec
import openai
import pytest
import trio

from api.client import gonka_async_http_client
from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from chain.app.abci import ERR_MEMPOOL_FULL, QueryResult
from chain.node.node import ChainNode
from chain.node.view import ChainNodeView
from chain.rpc.app import ApiError
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.node_view import BroadcastMode, BroadcastResult
from chain.rpc.server import serve_rpc
from chain.types.codec import decode
from chain.types.msgs import BaseMsg, MsgFinishInference, MsgStartInference, MsgValidation
from chain.types.msgs.authz import MsgExec
from chain.types.tx import Tx, tx_hash
from testermint_py.api_network import (
    DEV,
    HANG_GUARD_S,
    HOSTS,
    MODEL,
    PRICE,
    WEIGHTS,
    api_config,
    chain_homes,
    each_block,
)
from testermint_py.cluster import free_ports
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode

pytestmark = pytest.mark.slow

A, B = 0, 1
MESSAGES = [{"role": "user", "content": "Tell me about the network"}]
REPLAY_PATH = "/api/v1/inference/replay"
NOT_FOUND = 3  # the app's query code for an unknown key
# Validation: p = min(1, target * validator_power / others) with target = 1 at any traffic and
# reputation, so with two hosts of equal weight each validates every inference of the other.
# An inference whose start is held in A's outbox must not expire (20 blocks in the devnet
# profile) while A is down: that is not what these tests are about.
PARAMS = {"validation": {"min_validation_average_ppm": 1_000_000,
                         "min_validation_halfway_ppm": 1_000_000,
                         "max_validation_average_ppm": 1_000_000},
          "inference": {"grace_per_token_price": PRICE, "expiration_blocks": 1_000}}


class Relay:
    """A chain RPC view over chain node 0 that, on demand, refuses broadcasts, loses its
    answers about txs or holds queries, and logs the txs offered to it. Served by the real RPC
    server (`serve_rpc`)."""

    def __init__(self, node: ChainNode) -> None:
        self._view = ChainNodeView(node, node.config.rpc.commit_timeout_s)
        self.mempool_full = False
        # Broadcasts reach the mempool but their answers, and every tx lookup, are lost (503).
        self.answers_lost = False
        self.held_paths: set[str] = set()
        self.offered: list[Tx] = []                 # every tx broadcast through it, in order
        self.held: list[tuple[str, dict[str, str]]] = []   # queries it held, in order
        self._release = trio.Event()
        self._changed = trio.Event()

    # -- the test's side ------------------------------------------------------------------------

    def offers_of(self, wanted: Callable[[BaseMsg], bool]) -> list[Tx]:
        """The txs offered so far that hold a message `wanted` picks."""
        return [tx for tx in self.offered if any(map(wanted, _unwrapped(tx.body.messages)))]

    def release(self) -> None:
        """Stop holding queries and let the held ones through."""
        self.held_paths.clear()
        self._release.set()
        self._release = trio.Event()

    async def wait_until(self, check: Callable[[], object]) -> object:
        with trio.fail_after(HANG_GUARD_S):  # a hang guard, not a timing assertion
            while not (answer := check()):
                await self._changed.wait()
            return answer

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- NodeView -------------------------------------------------------------------------------

    def latest_height(self) -> int:
        return self._view.latest_height()

    async def wait_for_height(self, height: int) -> None:
        await self._view.wait_for_height(height)

    async def status(self):  # noqa: ANN201
        return await self._view.status()

    async def block(self, height: int):  # noqa: ANN201
        return await self._view.block(height)

    async def commit(self, height: int):  # noqa: ANN201
        return await self._view.commit(height)

    async def tx(self, hash_: bytes):  # noqa: ANN201
        if self.answers_lost:
            raise ApiError(503, "no answer (test relay)", "unavailable")
        return await self._view.tx(hash_)

    async def events(self, height: int):  # noqa: ANN201
        return await self._view.events(height)

    async def broadcast_tx(self, raw: bytes, mode: BroadcastMode) -> BroadcastResult:
        self.offered.append(decode(raw, Tx))
        self._notify()
        if self.mempool_full:
            return BroadcastResult(hash=tx_hash(raw), code=ERR_MEMPOOL_FULL,
                                   log="mempool is full (test relay)")
        result = await self._view.broadcast_tx(raw, mode)
        if self.answers_lost:
            raise ApiError(503, "no answer (test relay)", "unavailable")
        return result

    async def query(self, path: str, params: Mapping[str, str], height: int | None
                    ) -> QueryResult:
        if path in self.held_paths:
            release = self._release
            self.held.append((path, dict(params)))
            self._notify()
            await release.wait()
        return await self._view.query(path, params, height)


class Steered(Random):
    """A transfer agent's executor choice, falling on `target` (routing.choose draws
    `randrange(total weight)` over the candidates sorted by address)."""

    def __init__(self, target: str) -> None:
        super().__init__(0)
        self.target = target

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[override]
        ranked = sorted((h.address, w) for h, w in zip(HOSTS, WEIGHTS, strict=True))
        return sum(w for a, w in ranked if a < self.target)


@dataclass
class Host:
    """One host's API node, as `gonka api start --home <home>` with its config file runs it."""

    index: int
    raw_config: dict
    home: Path
    mlnode_url: str
    server: ApiServer | None = None
    stopped: trio.Event = field(default_factory=trio.Event)
    rng: Steered = field(default_factory=lambda: Steered(HOSTS[B].address))

    @property
    def address(self) -> str:
        return HOSTS[self.index].address

    @property
    def public_url(self) -> str:
        return self.raw_config["public_url"]

    async def start(self, nursery: trio.Nursery) -> ApiServer:
        resolved = resolve(config_from(self.raw_config), self.home, signer=HOSTS[self.index])
        stopped = self.stopped = trio.Event()

        async def run(task_status: trio.TaskStatus[ApiServer]) -> None:
            try:
                await serve_api(resolved, rng=self.rng, task_status=task_status)
            finally:
                stopped.set()

        self.server = await nursery.start(run)
        return self.server

    async def crash(self) -> None:
        """Cancel the whole node at once, whatever it is doing (no drain, no flush)."""
        assert self.server is not None
        self.server.stop()
        await self.stopped.wait()
        self.server = None


@dataclass
class Network:
    hosts: list[Host]
    relay: Relay
    rpc_url: str                     # chain node 1's RPC, which the test reads the chain from
    http: httpx.AsyncClient
    nursery: trio.Nursery

    def developer(self, host: int) -> openai.AsyncOpenAI:
        url = self.hosts[host].public_url
        return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                                  http_client=gonka_async_http_client(DEV, url))

    async def infer(self, ta: int, executor: int = B) -> str:
        """A developer's completion sent through host `ta`, executed by `executor`: its id."""
        rng = self.hosts[ta].rng
        rng.target = HOSTS[executor].address
        try:
            raw = await self.developer(ta).chat.completions.with_raw_response.create(
                model=MODEL, messages=MESSAGES, max_tokens=12)
        finally:
            rng.target = HOSTS[B].address
        assert raw.headers["x-executor-address"] == HOSTS[executor].address
        reply = raw.parse()
        assert reply.choices[0].message.content
        return reply.id

    async def set_script(self, host: int, **fields: object) -> None:
        r = await self.http.post(f"{self.hosts[host].mlnode_url}/mock/script", json=fields)
        assert r.status_code == 200, r.text

    async def replays_seen(self, host: int) -> int:
        stats = (await self.http.get(f"{self.hosts[host].mlnode_url}/mock/stats")).json()
        return stats["requests"].get(REPLAY_PATH, 0)

    async def record(self, inference_id: str) -> dict | None:
        async with RpcClient(self.rpc_url) as rpc:
            try:
                return await rpc.query("inference/inference", id=inference_id)
            except RpcError as e:
                if e.app_code == NOT_FOUND:  # not on chain yet
                    return None
                raise

    async def until_validated(self, inference_id: str) -> dict:
        """The record once a validator's MsgValidation passed it (waiting block by block)."""
        async def validated() -> dict | None:
            record = await self.record(inference_id)
            return record if record and record["status"] == "validated" else None

        try:
            return await each_block(self.rpc_url, validated)  # type: ignore[return-value]
        except trio.TooSlowError:
            raise AssertionError(f"inference {inference_id[:16]}... was never validated "
                                 f"(record: {await self.record(inference_id)})") from None

    async def balance(self, address: str) -> int:
        async with RpcClient(self.rpc_url) as rpc:
            return (await rpc.query("bank/balance", address=address))["amount"]

    async def committed_messages(self) -> list[BaseMsg]:
        """Every message of every tx in every committed block so far (failed txs included)."""
        out: list[BaseMsg] = []
        async with RpcClient(self.rpc_url) as rpc:
            last = (await rpc.status()).latest_height
            for height in range(1, last + 1):
                block = await rpc.block(height)
                assert block is not None
                for raw in block.txs:
                    out.extend(_unwrapped(decode(raw, Tx).body.messages))
        return out


def _unwrapped(msgs: tuple[BaseMsg, ...]) -> list[BaseMsg]:
    out: list[BaseMsg] = []
    for m in msgs:
        out.extend(_unwrapped(m.msgs) if isinstance(m, MsgExec) else [m])
    return out


def start_of(inference_id: str) -> Callable[[BaseMsg], bool]:
    iid = bytes.fromhex(inference_id)
    return lambda m: isinstance(m, MsgStartInference) and m.inference_id == iid


def finish_of(inference_id: str) -> Callable[[BaseMsg], bool]:
    iid = bytes.fromhex(inference_id)
    return lambda m: isinstance(m, MsgFinishInference) and m.inference_id == iid


def validation_of(inference_id: str, validator: str) -> Callable[[BaseMsg], bool]:
    iid = bytes.fromhex(inference_id)
    return lambda m: (isinstance(m, MsgValidation) and m.inference_id == iid
                      and m.validator == validator)


def select(msgs: list[BaseMsg], wanted: Callable[[BaseMsg], bool]) -> list[BaseMsg]:
    return [m for m in msgs if wanted(m)]


@asynccontextmanager
async def restart_network(root: Path) -> AsyncIterator[Network]:
    """The network from genesis, yielded in epoch 1's inference stage with both ML nodes
    serving MODEL; host A's chain RPC is the relay."""
    p2p0, p2p1, rpc0, rpc1, api0, api1 = free_ports(6)
    homes = chain_homes(root, [p2p0, p2p1], [rpc0, rpc1], params=PARAMS)
    mock_cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                       watchdog_interval_s=0.05)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=60) as http:
        chains = [await nursery.start(ChainNode(h.root).run) for h in homes]
        relay = Relay(chains[0])
        relay_url = await nursery.start(functools.partial(serve_rpc, relay, "127.0.0.1", 0))
        hosts = []
        for i, (port, chain_rpc) in enumerate(((api0, relay_url), (api1, chains[1].rpc_url))):
            mock_url = await nursery.start(functools.partial(
                serve_mock_mlnode, mock_cfg,
                script=MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
            host = Host(i, api_config(i, homes[i], chain_rpc, port, mock_url), root / f"api{i}",
                        mock_url)
            await host.start(nursery)
            hosts.append(host)
        net = Network(hosts, relay, chains[1].rpc_url, http, nursery)

        async def in_epoch_1() -> bool:
            status = (await http.get(f"{hosts[A].public_url}/v1/status")).json()
            return (status["epoch"], status["stage"]) == (1, "inference")

        await each_block(net.rpc_url, in_epoch_1)
        await until_serving(net)
        yield net
        nursery.cancel_scope.cancel()


async def until_serving(net: Network) -> None:
    """Until every running host's broker has its ML node serving MODEL."""
    async def serving() -> bool:
        for host in net.hosts:
            if host.server is None:
                continue
            [node] = (await net.http.get(f"{host.server.admin_url}/admin/v1/nodes")).json()
            if (node["actual"], node["served_model"]) != ("INFERENCE", MODEL):
                return False
        return True

    await each_block(net.rpc_url, serving)


async def quiesced(net: Network) -> tuple[list[BaseMsg], dict]:
    """Every committed message once host A has sent what it had to before now: one more
    inference B executes, validated by A (A's outbox sends in order, so anything A still had
    to send went no later), and that inference's record."""
    marker = await net.infer(B)
    record = await net.until_validated(marker)
    assert record["validated_by"] == [net.hosts[A].address]
    return await net.committed_messages(), record


async def test_a_crash_with_txs_queued_and_a_validation_in_progress_loses_neither(tmp_path):
    async with restart_network(tmp_path) as net:
        a = net.hosts[A]
        dev_before = await net.balance(DEV.address)
        # Given host A in the middle of validating an inference host B executed (its ML node
        # holds the replay),
        await net.set_script(A, delay_s=3600.0, delay_paths=[REPLAY_PATH])
        validating = await net.infer(B)

        async def replaying() -> bool:
            return await net.replays_seen(A) > 0

        await each_block(net.rpc_url, replaying)
        # and messages in its outbox that its chain RPC refuses for now ("mempool full"): as
        # transfer agent of two inferences B executed, their MsgStartInference (the first
        # signed and offered, the second queued behind it), and as executor of one B sent it,
        # its MsgFinishInference,
        net.relay.mempool_full = True
        offered = await net.infer(A)
        await net.relay.wait_until(lambda: net.relay.offers_of(start_of(offered)))
        queued = await net.infer(A)
        executed = await net.infer(B, executor=A)
        for inference_id, seen in ((offered, "finish_height"), (queued, "finish_height"),
                                   (executed, "start_height")):
            async def half_done(inference_id: str = inference_id, seen: str = seen
                                ) -> dict | None:
                record = await net.record(inference_id)
                return record if record and record[seen] > 0 else None

            record = await each_block(net.rpc_url, half_done)
            assert record["status"] == "started", record
        # when A's node crashes, and is started again from the same home and config (the chain
        # taking its txs and its ML node replaying again, as after an operator's fix),
        await a.crash()
        msgs = await net.committed_messages()
        for mine in (start_of(offered), start_of(queued), finish_of(executed),
                     validation_of(validating, a.address)):
            assert select(msgs, mine) == []
        net.relay.mempool_full = False
        await net.set_script(A, delay_s=0.0)
        await a.start(net.nursery)

        # then its messages reach the chain and complete the three inferences, the validation
        # that was in progress is done, and so are those the completed inferences brought,
        records = {i: await net.until_validated(i)
                   for i in (validating, offered, queued, executed)}
        assert [records[i]["transfer_agent"] for i in (offered, queued)] == [a.address] * 2
        assert records[executed]["executor"] == a.address
        assert [records[i]["validated_by"] for i in (validating, offered, queued)] == \
            [[a.address]] * 3
        assert records[executed]["validated_by"] == [HOSTS[B].address]
        # each message once on chain (no second tx, not even a refused one),
        msgs, marker = await quiesced(net)
        for mine in (start_of(offered), start_of(queued), finish_of(executed),
                     *(validation_of(i, a.address) for i in (validating, offered, queued))):
            assert len(select(msgs, mine)) == 1
        # and the developer paid exactly what the five inferences cost.
        costs = sum(r["actual_cost"] for r in (*records.values(), marker))
        assert costs > 0
        assert await net.balance(DEV.address) == dev_before - costs


async def test_a_crash_while_handling_the_block_that_brought_a_duty_loses_no_duty(tmp_path):
    async with restart_network(tmp_path) as net:
        a = net.hosts[A]
        # Given host A's validation worker reading the record of an inference B executed,
        # after the inference's event arrived and before it decided (its chain RPC holds the
        # read),
        net.relay.held_paths.add("inference/inference")
        inference_id = await net.infer(B)
        await net.relay.wait_until(
            lambda: ("inference/inference", {"id": inference_id}) in net.relay.held)
        # when A's node crashes there, and is started again from the same home and config,
        await a.crash()
        net.relay.release()
        await a.start(net.nursery)
        # then its worker handles that block again and validates the inference, once.
        record = await net.until_validated(inference_id)
        assert record["validated_by"] == [a.address]
        msgs, _ = await quiesced(net)
        assert len(select(msgs, validation_of(inference_id, a.address))) == 1


async def test_a_tx_that_landed_unbeknown_to_the_crashed_node_is_not_sent_again(tmp_path):
    async with restart_network(tmp_path) as net:
        a = net.hosts[A]
        # Given host A's chain RPC losing its answers (what A broadcasts reaches the mempool,
        # but A hears neither the verdict nor, from then on, whether its txs were included),
        net.relay.answers_lost = True
        # when A validates an inference B executed, its MsgValidation is included without A
        # knowing,
        inference_id = await net.infer(B)
        record = await net.until_validated(inference_id)
        assert record["validated_by"] == [a.address]
        mine = validation_of(inference_id, a.address)
        [signed] = {tx.hash for tx in net.relay.offers_of(mine)}
        status = (await net.http.get(f"{a.public_url}/v1/status")).json()
        assert status["tx_sender"]["ok"] is False, status
        # and A's node crashes then, and is started again from the same home and config,
        await a.crash()
        net.relay.answers_lost = False
        await a.start(net.nursery)
        # then it finds that tx on chain: the validation is on chain once, and A never offered
        # another tx for it.
        msgs, _ = await quiesced(net)
        assert len(select(msgs, mine)) == 1
        assert {tx.hash for tx in net.relay.offers_of(mine)} == {signed}
