"""The whole network from genesis: two chain nodes in-process (the two hosts' validators, devnet
profile, fast blocks) and each host's API node as `gonka api start` runs it (`serve_api` with
its defaults: the broker over its own mock ML node, the PoC orchestrator, self-registration).
Nothing is sent by hand but the genesis: the API nodes register their hosts, commit seeds and
PoC, validate each other, epoch 1 forms with both at the mocks' weight, and a developer's
official openai client gets a completion through host A that the chain records.

Everything is observed through public interfaces: the API nodes' public and admin HTTP, the
chain RPC's events to pace the polling.

Cost: one chain from genesis through epoch 1's PoC (about 35 blocks at TEST_CONSENSUS' pace),
about 15 s on a developer machine. Plus the admin node list kept across a restart (one chain
node, about 1 s).
"""

from __future__ import annotations

import base64
import functools
import time

import httpx
import msgspec
import openai
import trio

from api.client import gonka_async_http_client
from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from api.signing import sign_payload_request
from chain.crypto.hashing import blake3_256
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.node import ChainNode
from chain.node.setup import (
    add_validator,
    init_home,
    validator_key,
)
from testermint_py.api_network import (
    CHAIN_ID,
    DEV,
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

MESSAGES = [{"role": "user", "content": "Tell me about the network"}]


async def test_two_api_nodes_take_a_network_from_genesis_to_a_recorded_completion(tmp_path):
    p2p0, p2p1, rpc0, rpc1, api0, api1 = free_ports(6)
    homes = chain_homes(tmp_path, [p2p0, p2p1], [rpc0, rpc1])
    mock_cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                       watchdog_interval_s=0.05)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=60) as http:
        # Given two chain nodes from genesis, and each host's API node with its own ML node
        chains = [await nursery.start(ChainNode(h.root).run) for h in homes]
        servers: list[ApiServer] = []
        for i, port in enumerate((api0, api1)):
            mock_url = await nursery.start(functools.partial(
                serve_mock_mlnode, mock_cfg,
                script=MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
            raw = api_config(i, homes[i], chains[i].rpc_url, port, mock_url)
            resolved = resolve(config_from(raw), tmp_path / f"api{i}", signer=HOSTS[i])
            servers.append(await nursery.start(functools.partial(serve_api, resolved)))
        a, b = servers
        rpc_url = chains[0].rpc_url

        # when the chain reaches epoch 1's inference stage,
        async def in_epoch_1() -> dict | None:
            status = (await http.get(f"{a.public_url}/v1/status")).json()
            return status if (status["epoch"], status["stage"]) == (1, "inference") else None

        await each_block(rpc_url, in_epoch_1)

        # then both hosts registered themselves with their URLs, and epoch 1's group holds
        # both with their ML nodes' weight: their PoC was committed and validated by the other;
        participants = (await http.get(f"{a.public_url}/v1/participants")).json()
        assert {(p["address"], p["inference_url"], p["weight"])
                for p in participants["participants"]} == {
            (HOSTS[i].address, servers[i].node.public_url, WEIGHTS[i]) for i in range(2)}
        epoch = (await http.get(f"{b.public_url}/v1/epochs/1")).json()
        assert {m["address"]: m["weight"] for m in epoch["members"]} == {
            HOSTS[i].address: WEIGHTS[i] for i in range(2)}
        assert [m["id"] for m in (await http.get(f"{a.public_url}/v1/models")).json()["data"]
                ] == [MODEL]

        # and once each broker has its ML node serving the epoch's model again,
        async def serving() -> bool:
            for server in servers:
                [node] = (await http.get(f"{server.admin_url}/admin/v1/nodes")).json()
                if (node["actual"], node["served_model"]) != ("INFERENCE", MODEL):
                    return False
            return True

        await each_block(rpc_url, serving)

        # a developer's openai client gets a completion through host A
        sent: list[httpx.Request] = []

        async def capture(request: httpx.Request) -> None:
            if request.method == "POST":
                sent.append(request)

        client = openai.AsyncOpenAI(
            base_url=f"{a.public_url}/v1", api_key="unused", max_retries=0,
            http_client=gonka_async_http_client(DEV, a.public_url,
                                                event_hooks={"request": [capture]}))
        reply = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                     max_tokens=16)
        assert reply.choices[0].message.content
        [request] = sent
        assert reply.id == base64.b64decode(request.headers["Authorization"]).hex()

        # which the chain records as finished, between the developer, A and an executor
        async def finished() -> dict | None:
            r = await http.get(f"{a.public_url}/v1/chat/completions/{reply.id}")
            return r.json() if r.status_code == 200 and r.json()["status"] == "finished" \
                else None

        record = await each_block(rpc_url, finished)
        assert record["requested_by"] == DEV.address
        assert record["transfer_agent"] == HOSTS[0].address
        assert record["executor"] in {h.address for h in HOSTS}
        assert record["prompt_hash"] == base64.b64encode(blake3_256(request.content)).decode()
        assert (record["prompt_tokens"], record["completion_tokens"]) == (
            reply.usage.prompt_tokens, reply.usage.completion_tokens)
        assert record["actual_cost"] == (reply.usage.prompt_tokens
                                         + reply.usage.completion_tokens) * PRICE

        # and the executor hands the other host, a validator of epoch 1, what it served.
        executor = servers[[h.address for h in HOSTS].index(record["executor"])]
        validator = HOSTS[1] if executor is a else HOSTS[0]
        headers = sign_payload_request(validator, bytes.fromhex(reply.id), validator.address,
                                       time.time_ns())
        r = await http.get(f"{executor.public_url}/v1/inference/{reply.id}/payload",
                           headers=headers)
        assert r.status_code == 200, r.text
        payload = r.json()
        assert base64.b64decode(payload["request"]) == request.content
        assert base64.b64encode(blake3_256(base64.b64decode(payload["response"]))).decode() \
            == record["response_hash"]
        nursery.cancel_scope.cancel()


async def test_the_admin_node_list_survives_a_restart(tmp_path):
    # Given one chain node and an API node whose config declares one ML node,
    [p2p, rpc_port] = free_ports(2)
    home = init_home(tmp_path / "chain", CHAIN_ID, config=NodeConfig(
        p2p=P2PConfig(listen=f"127.0.0.1:{p2p}"), rpc=RpcConfig(listen=f"127.0.0.1:{rpc_port}")),
        profile="devnet")
    add_validator(home, name="v", pubkey=validator_key(home).public_key, power=10,
                  operator=HOSTS[0].address)
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=30) as http:
        chain = await nursery.start(ChainNode(home.root).run)
        raw = {"chain_rpc": chain.rpc_url, "public": {"host": "127.0.0.1", "port": 0},
               "callbacks": {"port": 0}, "admin": {"port": 0},
               "ml_nodes": [{"id": "gpu0", "url": "http://127.0.0.1:9", "models": [MODEL]}]}
        resolved = resolve(config_from(raw), tmp_path / "api", signer=HOSTS[0])

        async def listed(server: ApiServer) -> dict[str, bool]:
            nodes = (await http.get(f"{server.admin_url}/admin/v1/nodes")).json()
            return {n["node_id"]: n["enabled"] for n in nodes}

        server = await nursery.start(functools.partial(serve_api, resolved))
        assert await listed(server) == {"gpu0": True}
        # when the operator adds a node, disables it, and removes the configured one,
        r = await http.post(f"{server.admin_url}/admin/v1/nodes", json={
            "node_id": "gpu1", "url": "http://127.0.0.1:10", "models": [MODEL]})
        assert r.status_code == 200, r.text
        r = await http.post(f"{server.admin_url}/admin/v1/nodes/gpu1/disable")
        assert r.status_code == 200, r.text
        assert (await http.delete(f"{server.admin_url}/admin/v1/nodes/gpu0")).status_code == 200
        assert await listed(server) == {"gpu1": False}
        server.stop()
        # then after a restart the added node is there as left, and the configured one is
        # declared again by the config.
        server = await nursery.start(functools.partial(serve_api, resolved))
        assert await listed(server) == {"gpu0": True, "gpu1": False}
        nursery.cancel_scope.cancel()
