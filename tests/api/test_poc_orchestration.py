"""PoC orchestration end to end: a real chain node in-process (devnet profile, short epochs) and
two hosts, each with its own orchestrator, broker, tx sender, callbacks/proofs server and mock ML
node. Both commit seeds and PoC, serve proofs and validate each other, and the next epoch's group
holds both with the mock's scripted weight; a host whose ML node cheats is voted fraud by the
other and gets no weight. Plus the seed surviving a restart and the proof endpoint's refusals.

Cost: each two-host test runs one PoC of a fresh chain (about 35 blocks at the test consensus'
pace); see the report of the change for the measured seconds.
"""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
import msgspec
import pytest
import trio
from quart_trio import QuartTrio

from api.broker import Broker, NodeSpec
from api.chain import Outbox, TxSender
from api.poc.http import callbacks_blueprint, poc_proofs_blueprint
from api.poc.orchestrator import EpochInfoView, GroupView, PocOrchestrator
from chain.app.profiles import DEVNET_MODEL
from chain.crypto import ed25519
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
from chain.rpc import RpcClient
from chain.types.inference import seed_commitment
from chain.types.msgs import MsgRegisterParticipant, MsgSubmitSeed
from chain.types.msgs.participants import MlNodeSpec
from testermint_py.cluster import TEST_CONSENSUS, free_ports
from testermint_py.http import serve_app
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode

CHAIN_ID = "poc-1"
HOST_A = PrivateKey(bytes([41]) * 32)
HOST_B = PrivateKey(bytes([42]) * 32)
B_CONSENSUS = ed25519.PrivateKey(bytes([43]) * 32)   # B's genesis validator key: never runs
FUNDS = 10**15
WEIGHT = 100
FIRST_POC = 15
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.1}


async def start_chain(tmp_path, nursery) -> tuple[ChainNode, bytes]:
    """One validator node; A operates it (power 100), B a genesis validator of power 1 whose
    node never runs (100/101 of the power signs every block), so both hold weight in epoch 0."""
    config = NodeConfig(p2p=P2PConfig(listen="127.0.0.1:0"), rpc=RpcConfig(listen="127.0.0.1:0"))
    home = init_home(tmp_path / "chain", CHAIN_ID, config=config, profile="devnet")
    for key in (HOST_A, HOST_B):
        add_account(home, key.address, FUNDS)
    a_key = validator_key(home).public_key
    add_validator(home, name="a", pubkey=a_key, power=100, operator=HOST_A.address)
    add_validator(home, name="b", pubkey=B_CONSENSUS.public_key, power=1,
                  operator=HOST_B.address)
    genesis = read_genesis(home)
    params = dict(genesis.app_params)
    params["epochs"] = dict(params["epochs"], first_poc_start=FIRST_POC)
    write_genesis(home, msgspec.structs.replace(genesis, consensus=TEST_CONSENSUS,
                                                app_params=params))
    node = await nursery.start(ChainNode(home.root).run)
    return node, a_key


@dataclass
class Host:
    key: PrivateKey
    url: str
    orchestrator: PocOrchestrator
    broker: Broker
    sender: TxSender
    mock: httpx.AsyncClient


@asynccontextmanager
async def start_host(key: PrivateKey, consensus_key: bytes, rpc_url: str, home, script):
    """A host's API-node pieces around a mock ML node; registered on chain before it yields."""
    cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                  watchdog_interval_s=0.05)
    async with AsyncExitStack() as stack:
        # What the tasks use is opened before their nursery, so that it closes only after every
        # task has stopped (an exit stack unwinds in reverse).
        rpc = await stack.enter_async_context(RpcClient(rpc_url))
        outbox = Outbox(home / "outbox.db")
        stack.callback(outbox.close)
        nursery = await stack.enter_async_context(trio.open_nursery())
        mock_url = await nursery.start(functools.partial(serve_mock_mlnode, cfg, script=script))
        mock = await stack.enter_async_context(httpx.AsyncClient(base_url=mock_url))
        sender = TxSender(rpc, outbox, key, key.address, chain_id=CHAIN_ID, **FAST)
        await nursery.start(sender.run)
        broker = Broker([NodeSpec(node_id="n1", url=mock_url, models=(DEVNET_MODEL,))],
                        probe_timeout_s=5, poll_interval_s=1, retry_delay_s=0.05,
                        max_retry_delay_s=0.5)
        await nursery.start(broker.run)
        [port] = free_ports(1)
        url = f"http://127.0.0.1:{port}"
        orchestrator = PocOrchestrator(key.address, key.public_key, sender, home, rpc, broker,
                                       callbacks_url=url, commit_every_blocks=2,
                                       proof_timeout_s=10)
        app = QuartTrio(f"api-{key.address[-6:]}")
        app.register_blueprint(callbacks_blueprint(orchestrator))
        app.register_blueprint(poc_proofs_blueprint(orchestrator))
        await nursery.start(serve_app, app, port)
        registered = sender.submit(MsgRegisterParticipant(
            participant=key.address, inference_url=url, validator_key=consensus_key,
            ml_nodes=(MlNodeSpec(node_id="n1", models=(DEVNET_MODEL,)),)))
        with trio.fail_after(60):  # a hang guard, not a timing assertion
            assert (await sender.wait_settled(registered)).state == "included"
        await nursery.start(orchestrator.run)
        yield Host(key, url, orchestrator, broker, sender, mock)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def two_hosts(tmp_path, script_b: MockScript):
    script_a = MockScript(weight=WEIGHT, weight_per_batch=WEIGHT)
    async with trio.open_nursery() as nursery:
        node, a_consensus = await start_chain(tmp_path, nursery)
        async with start_host(HOST_A, a_consensus, node.rpc_url, tmp_path / "a", script_a) as a, \
                start_host(HOST_B, B_CONSENSUS.public_key, node.rpc_url, tmp_path / "b",
                           script_b) as b:
            yield node, a, b
        nursery.cancel_scope.cancel()


async def group_after_poc(node: ChainNode) -> tuple[EpochInfoView, GroupView]:
    """Wait for epoch 1's group (formed at the end of its PoC validation) and read it."""
    async with RpcClient(node.rpc_url) as rpc:
        info = await rpc.query("epochs/current", as_type=EpochInfoView)
        assert info.poc.poc_start == FIRST_POC
        with trio.fail_after(120):  # a hang guard, not a timing assertion
            await node.wait_for_height(info.poc.validation_end + 1)
        group = await rpc.query("epochs/group", as_type=GroupView, epoch="1")
        return info, group


def weights(group: GroupView) -> dict[str, int]:
    return {m.address: m.weight for m in group.members if m.weight > 0}


async def test_two_honest_hosts_validate_each_other_and_both_get_their_weight(tmp_path):
    async with two_hosts(tmp_path, MockScript(weight=WEIGHT, weight_per_batch=WEIGHT)) as (
            node, a, b):
        info, group = await group_after_poc(node)
        # Both committed and each judged the other honest on every sampled nonce
        for judge, judged in ((a, b), (b, a)):
            verdict = judge.orchestrator.verdicts[(1, judged.key.address)]
            assert (verdict.fraud, verdict.failed, verdict.checked) == (False, 0, 64)
        # so the next epoch's group holds both with the mock's weight
        assert weights(group) == {HOST_A.address: WEIGHT, HOST_B.address: WEIGHT}
        # and each host's seed commitment on chain opens with the seed in its seed file
        for host in (a, b):
            record = host.orchestrator.seeds.get(1)
            member = next(m for m in group.members if m.address == host.key.address)
            assert member.seed_commitment == seed_commitment(host.key.address, 1, record.seed)
            assert record.commitment == member.seed_commitment
        # The proof endpoint refuses a position outside the committed list and an epoch
        # without a commit
        async with httpx.AsyncClient(base_url=a.url) as http:
            r = await http.post("/v1/poc/proofs", json={"epoch": 1, "positions": [WEIGHT]})
            assert r.status_code == 400 and "outside the committed list" in r.json()["error"]
            r = await http.post("/v1/poc/proofs", json={"epoch": 2, "positions": [0]})
            assert r.status_code == 404
            r = await http.post("/v1/poc/proofs", json={"epoch": 1, "positions": [0, 0]})
            assert r.status_code == 400
            r = await http.post("/v1/poc/proofs", json={"epoch": 1, "positions": [0]})
            assert r.status_code == 200 and r.json()["count"] == WEIGHT
        assert info.poc.commit_deadline < info.poc.validation_end


async def test_a_cheating_host_is_voted_fraud_and_gets_no_weight(tmp_path):
    async with two_hosts(tmp_path, MockScript(weight=WEIGHT, weight_per_batch=WEIGHT,
                                              poc_fraud=0.5)) as (node, a, b):
        _, group = await group_after_poc(node)
        # A found B's made-up nonces among the sampled ones and voted fraud; B judged A honest
        on_b = a.orchestrator.verdicts[(1, HOST_B.address)]
        assert on_b.fraud and on_b.failed > 0 and on_b.checked == 64
        assert not b.orchestrator.verdicts[(1, HOST_A.address)].fraud
        # and with two hosts A's vote is all of "the others": B gets no weight
        assert weights(group) == {HOST_A.address: WEIGHT}


# -- without a chain ---------------------------------------------------------------------------


async def test_the_seed_survives_a_restart_and_is_committed_once(tmp_path):
    async with RpcClient("http://127.0.0.1:9") as rpc:
        def orchestrator(outbox: Outbox) -> PocOrchestrator:
            sender = TxSender(rpc, outbox, HOST_A, HOST_A.address, chain_id=CHAIN_ID)
            return PocOrchestrator(HOST_A.address, HOST_A.public_key, sender, tmp_path, rpc,
                                   Broker(), callbacks_url="http://127.0.0.1:1")

        # Given a seed drawn and committed for epoch 7 by a process that then stopped
        with Outbox(tmp_path / "outbox.db") as outbox:
            first = orchestrator(outbox).ensure_seed(7)
        # when a new process on the same home reaches the same PoC
        with Outbox(tmp_path / "outbox.db") as outbox:
            again = orchestrator(outbox).ensure_seed(7)
            queued = [e.msg for e in outbox.queued(100)]
        # then it has the same seed and the commitment was queued once only
        assert again.seed == first.seed and len(first.seed) == 32
        assert first.commitment == seed_commitment(HOST_A.address, 7, first.seed)
        assert queued == [MsgSubmitSeed(participant=HOST_A.address, epoch=7,
                                        commitment=first.commitment)]
        # and another epoch gets a different seed
        with Outbox(tmp_path / "outbox.db") as outbox:
            assert orchestrator(outbox).ensure_seed(8).seed != first.seed


@pytest.mark.parametrize("body", [b"{}", b'{"epoch": 1, "positions": []}', b"not json"])
async def test_the_proof_endpoint_refuses_a_bad_request(tmp_path, body):
    async with RpcClient("http://127.0.0.1:9") as rpc:
        with Outbox(tmp_path / "outbox.db") as outbox:
            sender = TxSender(rpc, outbox, HOST_A, HOST_A.address, chain_id=CHAIN_ID)
            orch = PocOrchestrator(HOST_A.address, HOST_A.public_key, sender, tmp_path, rpc,
                                   Broker(), callbacks_url="http://127.0.0.1:1")
            app = QuartTrio("proofs")
            app.register_blueprint(poc_proofs_blueprint(orch))
            app.register_blueprint(callbacks_blueprint(orch))
            client = app.test_client()
            r = await client.post("/v1/poc/proofs", data=body)
            assert r.status_code == 400
            assert "invalid body" in (await r.get_json())["error"]
            # a callback for a PoC this orchestrator does not know yet: retry later (503)
            r = await client.post("/poc/generated", json={
                "public_key": HOST_A.public_key.hex(), "block_hash": "ab" * 32,
                "block_height": 3, "nonces": [1], "dist": [0.5]})
            assert r.status_code == 503
