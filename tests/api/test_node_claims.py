"""The API node claims its host's rewards by itself: the network of test_node_network.py (two
chain validators from genesis, each host's API node as `gonka api start` runs it, with its own
mock ML node), but with epochs short enough to reach the settlement of epoch 1.

A developer's inference in epoch 1 gives its executor work coins; the other host may have to
validate it (its seed decides). When epoch 2 becomes effective the chain settles epoch 1 (the
emission is minted and split by weight, the work coins are owed), and each host's validation
worker, seeing its `settlement` event, waits for its validations of epoch 1 and claims with the
seed its PoC orchestrator committed. Nothing is sent by hand but the genesis and the inference.

Observed through public interfaces only: the chain RPC's events (`settlement`,
`settlement_summary`, `rewards_claimed`) and its queries (balances and supply read before the
settlement block, which each read's height proves, and after the claims).

Cost: about 56 blocks at a quickened TEST_CONSENSUS pace.
"""

from __future__ import annotations

import functools

import httpx
import msgspec
import openai
import trio

from api.client import gonka_async_http_client
from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from chain.node.home import NodeHome
from chain.node.node import ChainNode
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import EventFrame
from testermint_py.api_network import (
    DEV,
    HOSTS,
    MODEL,
    PRICE,
    WEIGHTS,
    api_config,
    each_block,
)
from testermint_py.api_network import chain_homes as network_homes
from testermint_py.cluster import TEST_CONSENSUS, free_ports
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode
from tests.api.test_node_network import MESSAGES

CHAIN_ID = "api-claims-1"
NGONKA = 10**9
EMISSION = 1_000 * NGONKA
# Epoch 1's PoC at 12, effective at 12 + 4 + 3 + 6 + 1 = 26; epoch 2's PoC at 40, effective
# (and epoch 1 settled) at 54. The exchange and PoC validation stages keep room for API nodes
# slowed by a loaded machine, and epoch 1 keeps 14 blocks before epoch 2's PoC takes the ML
# nodes: enough to serve the inference and for the other host to validate it (a validation
# of epoch 1 is refused once epoch 2 is effective, and then so is the validator's claim).
EPOCHS = {"first_poc_start": 12, "epoch_length": 28, "sprint_blocks": 4, "exchange_blocks": 3,
          "validation_blocks": 6, "set_new_validators_delay": 1,
          "inference_validation_cutoff": 2}
CONSENSUS = msgspec.structs.replace(TEST_CONSENSUS, timeout_commit_ms=100)
HANG_GUARD_S = 180                          # a hang guard, not a timing assertion


def chain_homes(root, p2p: list[int], rpc: list[int]) -> list[NodeHome]:
    return network_homes(root, p2p, rpc, chain_id=CHAIN_ID, epochs=EPOCHS, consensus=CONSENSUS,
                         params={"rewards": {"initial_epoch_reward": EMISSION,
                                             "work_vesting_epochs": 0,
                                             "reward_vesting_epochs": 0}})


def attributes(frame: EventFrame, type_: str) -> list[dict[str, str]]:
    return [{a.key: a.value for a in e.attributes} for e in frame.events if e.type == type_]


async def test_each_api_node_claims_its_hosts_settlement_of_epoch_1(tmp_path):
    p2p0, p2p1, rpc0, rpc1, api0, api1 = free_ports(6)
    homes = chain_homes(tmp_path, [p2p0, p2p1], [rpc0, rpc1])
    mock_cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                       watchdog_interval_s=0.05)
    hosts = [h.address for h in HOSTS]
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=60) as http:
        # Given two chain nodes from genesis, and each host's API node with its own ML node
        chains = [await nursery.start(ChainNode(h.root).run) for h in homes]
        servers: list[ApiServer] = []
        for i, port in enumerate((api0, api1)):
            mock_url = await nursery.start(functools.partial(
                serve_mock_mlnode, mock_cfg,
                script=MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
            raw = api_config(i, homes[i], chains[i].rpc_url, port, mock_url)
            raw["poc"] = {**raw["poc"], "commit_every_blocks": 1}
            resolved = resolve(config_from(raw), tmp_path / f"api{i}", signer=HOSTS[i])
            servers.append(await nursery.start(functools.partial(serve_api, resolved)))
        a = servers[0]
        rpc_url = chains[0].rpc_url

        # when, in epoch 1's inference stage with both ML nodes serving its model,
        async def serving_in_epoch_1() -> bool:
            status = (await http.get(f"{a.public_url}/v1/status")).json()
            if (status["epoch"], status["stage"]) != (1, "inference"):
                return False
            for server in servers:
                [node] = (await http.get(f"{server.admin_url}/admin/v1/nodes")).json()
                if (node["actual"], node["served_model"]) != ("INFERENCE", MODEL):
                    return False
            return True

        await each_block(rpc_url, serving_in_epoch_1)

        # a developer gets a completion through host A (work coins for its executor),
        client = openai.AsyncOpenAI(
            base_url=f"{a.public_url}/v1", api_key="unused", max_retries=0,
            http_client=gonka_async_http_client(DEV, a.public_url))
        reply = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                     max_tokens=16)

        async def finished() -> dict | None:
            # (finished, or validated already: the other host may be quick)
            r = await http.get(f"{a.public_url}/v1/chat/completions/{reply.id}")
            return r.json() if r.status_code == 200 and r.json()["status"] in {
                "finished", "validated"} else None

        record = await each_block(rpc_url, finished)
        assert record["epoch"] == 1
        cost = record["actual_cost"]
        assert cost == (reply.usage.prompt_tokens + reply.usage.completion_tokens) * PRICE > 0

        async with RpcClient(rpc_url) as rpc:
            # (what the hosts hold, and the supply, read before the settlement: the RPC
            # answers at the latest height only, so each read says where it was made),
            async def read(path: str, **params: str) -> tuple[int, int]:
                view = await rpc.query_view(path, **params)
                return view.height, msgspec.json.decode(view.value)["amount"]

            before = {h: await read("bank/balance", address=h) for h in hosts}
            supply_before = await read("bank/supply")

            # and the chain goes on to settle epoch 1 when epoch 2 becomes effective,
            settled: dict[str, dict[str, str]] = {}
            claimed: dict[str, dict[str, str]] = {}
            summary: dict[str, str] = {}
            settle_height = 0
            with trio.fail_after(HANG_GUARD_S):
                async with rpc.events(from_height=1, types=(
                        "settlement", "settlement_summary", "rewards_claimed")) as frames:
                    async for frame in frames:
                        for s in attributes(frame, "settlement_summary"):
                            if s["epoch"] == "1":
                                summary, settle_height = s, frame.height
                            else:
                                raise AssertionError(f"epoch {s['epoch']} settled, and only "
                                                     f"{sorted(claimed)} claimed epoch 1")
                        for s in attributes(frame, "settlement"):
                            if s["epoch"] == "1":
                                settled[s["participant"]] = s
                        for c in attributes(frame, "rewards_claimed"):
                            assert c["epoch"] == "1", c
                            claimed[c["participant"]] = c
                        if set(claimed) == set(hosts):
                            break
            assert max(height for height, _ in (*before.values(), supply_before)) \
                < settle_height

            # then both hosts were settled for epoch 1 with the emission split by their
            # equal weights, and the inference's work coins
            # (shared between the executor and its validator: both worked for it),
            assert set(settled) == set(hosts)
            assert int(summary["minted"]) == EMISSION
            assert (summary["forfeited"], summary["expired_work"], summary["expired_reward"]) \
                == ("0", "0", "0")
            assert {h: int(s["reward"]) for h, s in settled.items()} == {
                h: EMISSION // 2 for h in hosts}
            assert int(summary["work"]) == cost
            assert sum(int(s["work"]) for s in settled.values()) == cost
            assert int(settled[record["executor"]]["work"]) > 0
            # and each API node claimed exactly its host's settlement, which is gone,
            for h in hosts:
                assert (claimed[h]["work"], claimed[h]["reward"]) == (
                    settled[h]["work"], settled[h]["reward"])
                try:
                    left = await rpc.query("rewards/settlement", address=h)
                except RpcError as e:
                    assert e.app_code == 3, e
                else:
                    raise AssertionError(f"{h} still holds a settlement: {left}")
            totals = await rpc.query("rewards/totals")
            assert (totals["claimed_reward"], totals["claimed_work"]) == (EMISSION, cost)
            # so each host's balance grew by exactly its settlement,
            for h in hosts:
                _, now = await read("bank/balance", address=h)
                assert now - before[h][1] == int(settled[h]["work"]) + int(settled[h]["reward"])
            # and the supply by exactly the emission minted (a claim moves coins, mints none).
            assert (await read("bank/supply"))[1] == supply_before[1] + EMISSION
        nursery.cancel_scope.cancel()
