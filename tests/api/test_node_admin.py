"""The API node's routes that speak for a host on chain, through HTTP against real chain nodes:
unit-of-compute price proposals and model proposals on the admin server, and the relay of a
participant's signed registration on the public server.

1. Price proposals: testermint_py.api_network's two hosts from genesis (each API node as
   `gonka api start` runs it, with its mock ML node); the proposals land in the first blocks,
   well before epoch 1's group forms (at 37). Cost: 37 blocks, about 15 s.
2. Model proposals and registrations: one chain validator (host 0, funded) and host 0's API
   node with a static ML-node pool (no broker, no PoC): a few blocks.

Observed through public interfaces only: the API nodes' HTTP, the chain RPC's queries.
"""

from __future__ import annotations

import base64
import functools

import httpx
import msgspec
import trio

from api.mlnodes import StaticPool
from api.node.admin import proposal_id_in
from api.node.config import config_from, resolve
from api.node.server import ApiServer, serve_api
from chain.crypto import ed25519
from chain.crypto.secp256k1 import PrivateKey
from chain.node.config import NodeConfig, P2PConfig, RpcConfig
from chain.node.node import ChainNode
from chain.node.setup import add_account, add_validator, init_home, validator_key
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import AttributeView, EventView, TxResultView, TxView
from chain.types.codec import encode
from chain.types.msgs import (
    MlNodeSpec,
    MsgExec,
    MsgRegisterParticipant,
    MsgSend,
    MsgSubmitProposal,
)
from chain.types.msgs.params import ParamChange
from chain.types.tx import Tx, TxBody, sign_bytes, sign_tx
from testermint_py.api_network import (
    CHAIN_ID,
    FUNDS,
    HOSTS,
    MODEL,
    WEIGHTS,
    api_config,
    chain_homes,
    each_block,
)
from testermint_py.cluster import free_ports
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode

PRICE_PATH = "/admin/v1/unit-of-compute-price-proposal"


async def chain_query(rpc_url: str, path: str, **params: str) -> object:
    async with RpcClient(rpc_url) as rpc:
        return await rpc.query(path, **params)


async def chain_lacks(rpc_url: str, path: str, **params: str) -> bool:
    """True when the chain answers `path` with "not found"."""
    try:
        await chain_query(rpc_url, path, **params)
    except RpcError as e:
        return e.code == "query_failed" and e.app_code == 3
    return False


# -- 1. unit-of-compute price proposals -----------------------------------------------------------


async def two_hosts(root, nursery: trio.Nursery) -> tuple[list[ApiServer], str]:
    """api_network's two hosts (chain_homes, api_config) started at genesis: (the API servers,
    a chain RPC URL). Each API node registers its host and runs PoC 1 (from height 20; the
    group forms at 20 + 8 + 3 + 6 = 37) on its mock ML node by itself."""
    p2p0, p2p1, rpc0, rpc1, api0, api1 = free_ports(6)
    homes = chain_homes(root, [p2p0, p2p1], [rpc0, rpc1])
    mock_cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.02,
                                       watchdog_interval_s=0.05)
    chains = [await nursery.start(ChainNode(h.root).run) for h in homes]
    servers = []
    for i, port in enumerate((api0, api1)):
        mock_url = await nursery.start(functools.partial(
            serve_mock_mlnode, mock_cfg,
            script=MockScript(weight=WEIGHTS[i], weight_per_batch=WEIGHTS[i])))
        raw = api_config(i, homes[i], chains[i].rpc_url, port, mock_url)
        resolved = resolve(config_from(raw), root / f"api{i}", signer=HOSTS[i])
        servers.append(await nursery.start(functools.partial(serve_api, resolved)))
    return servers, chains[0].rpc_url


async def test_price_proposals_through_the_admin_api_set_the_next_groups_price(tmp_path):
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=90) as http:
        servers, rpc_url = await two_hosts(tmp_path, nursery)
        admin = [s.admin_url + PRICE_PATH for s in servers]

        async def registered() -> bool:
            for server, host in zip(servers, HOSTS, strict=True):
                r = await http.get(f"{server.public_url}/v1/participants/{host.address}")
                if r.status_code != 200:
                    return False
            return True

        # Given both hosts registered by their API nodes, and no proposal from either yet
        await each_block(rpc_url, registered)
        r = await http.get(admin[1])
        assert r.status_code == 404 and "no unit-of-compute price proposal" in r.json()["error"]

        # When host 0 proposes 127 ngonka, then 2 ugonka (the later one replaces it)
        r = await http.post(admin[0], json={"price": 127, "denom": "ngonka"})
        assert r.status_code == 200, r.text
        assert r.json()["price"] == 127 and r.json()["participant"] == HOSTS[0].address
        assert (await http.get(admin[0])).json()["price"] == 127
        r = await http.post(admin[0], json={"price": 2, "denom": "ugonka"})
        assert r.status_code == 200, r.text
        assert r.json()["price"] == 2_000
        mine = (await http.get(admin[0])).json()
        assert mine == {"participant": HOSTS[0].address, "price": 2_000,
                        "height": r.json()["height"], "epoch": 0}
        assert await chain_query(rpc_url, "epochs/unit_of_compute_price_proposal",
                                 participant=HOSTS[0].address) == mine
        # and host 1 proposes 1500 ngonka through its own API node
        r = await http.post(admin[1], json={"price": 1_500, "denom": "ngonka"})
        assert r.status_code == 200, r.text
        theirs = (await http.get(admin[1])).json()
        assert theirs["price"] == 1_500

        # Then bad bodies are refused with the reason, and nothing is sent
        for body, reason in [
            ({"price": 5, "denom": "btc"}, "denom"),
            ({"price": 0, "denom": "ngonka"}, ">= 1"),
            ({"price": -3, "denom": "gonka"}, ">= 1"),
            ({"price": "12", "denom": "ngonka"}, "Expected `int`"),
            ({"price": 12}, "denom"),
            ({"price": 12, "denom": "ngonka", "fee": 1}, "fee"),
            ({"price": 10**10, "denom": "gonka"}, "largest amount"),
        ]:
            r = await http.post(admin[0], json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"].startswith("invalid body:") and reason in r.json()["error"]
        r = await http.post(admin[0], content=b"price=5", headers={"content-type": "text/plain"})
        assert r.status_code == 400
        assert (await http.get(admin[0])).json() == mine

        # And when epoch 1's group forms, its price is the weighted median of the two: with
        # equal weights (W = 2w, half = w) the lower price already reaches half
        async def group_1() -> dict | None:
            if await chain_lacks(rpc_url, "epochs/group", epoch="1"):
                return None
            return await chain_query(rpc_url, "epochs/group", epoch="1")

        group = await each_block(rpc_url, group_1)
        assert group["group"]["formed_height"] >= max(mine["height"], theirs["height"]), \
            "the proposals came after epoch 1's group formed: start its PoC later"
        weights = {m["address"]: m["weight"] for m in group["members"]}
        assert set(weights) == {h.address for h in HOSTS}
        assert len(set(weights.values())) == 1
        assert group["group"]["unit_of_compute_price"] == 1_500
        # as the public API shows it too
        r = await http.get(f"{servers[0].public_url}/v1/epochs/1")
        assert r.json()["group"]["unit_of_compute_price"] == 1_500
        assert (await chain_query(rpc_url, "epochs/group", epoch="0"))["group"][
            "unit_of_compute_price"] == 100
        nursery.cancel_scope.cancel()


# -- 2. model proposals and registrations --------------------------------------------------------


async def one_node_network(root, nursery: trio.Nursery):
    """One chain validator operated by host 0 (funded) and host 0's API node with a static
    pool: the API server."""
    p2p, rpc_port = free_ports(2)
    home = init_home(root / "chain", CHAIN_ID, config=NodeConfig(
        p2p=P2PConfig(listen=f"127.0.0.1:{p2p}"), rpc=RpcConfig(listen=f"127.0.0.1:{rpc_port}")),
        profile="devnet")
    add_validator(home, name="v", pubkey=validator_key(home).public_key, power=10,
                  operator=HOSTS[0].address)
    add_account(home, HOSTS[0].address, FUNDS)
    chain = await nursery.start(ChainNode(home.root).run)
    raw = {"chain_rpc": chain.rpc_url, "public": {"host": "127.0.0.1", "port": 0},
           "callbacks": {"port": 0}, "admin": {"port": 0}}
    resolved = resolve(config_from(raw), root / "api", signer=HOSTS[0])
    server = await nursery.start(functools.partial(serve_api, resolved, pool=StaticPool({})))
    return server, chain.rpc_url, validator_key(home).public_key


async def test_a_model_proposal_goes_to_governance_with_the_registry_it_would_set(tmp_path):
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=90) as http:
        server, rpc_url, _ = await one_node_network(tmp_path, nursery)
        url = f"{server.admin_url}/admin/v1/models"
        [current] = await chain_query(rpc_url, "models/all")
        min_deposit = (await chain_query(rpc_url, "params/gov"))["min_deposit"]
        balance = int((await chain_query(rpc_url, "bank/balance",
                                         address=HOSTS[0].address))["amount"])

        # When the operator proposes a new model
        r = await http.post(url, json={"id": "acme/llama-7b", "units_of_compute_per_token": 10,
                                       "hf_repo": "acme/llama"})
        # Then a governance proposal exists that sets the registry to the current one plus it,
        # with the minimum deposit from this host
        assert r.status_code == 200, r.text
        answer = r.json()
        proposal = await chain_query(rpc_url, "gov/proposal", id=str(answer["proposal_id"]))
        assert proposal["proposer"] == HOSTS[0].address
        assert proposal["title"] == "acme/llama-7b model proposal" == answer["title"]
        assert proposal["status"] == "voting_period"
        assert proposal["total_deposit"] == min_deposit == answer["deposit"]
        [change] = proposal["changes"]
        assert (change["module"], change["key"]) == ("models", "models")
        proposed = msgspec.json.decode(change["value"])
        assert [m["id"] for m in proposed] == sorted([MODEL, "acme/llama-7b"])
        assert current in proposed
        new = next(m for m in proposed if m["id"] == "acme/llama-7b")
        assert (new["units_of_compute_per_token"], new["hf_repo"]) == (10, "acme/llama")
        assert proposed == answer["models"]
        after = int((await chain_query(rpc_url, "bank/balance",
                                       address=HOSTS[0].address))["amount"])
        assert after == balance - min_deposit

        # When it proposes new terms for a model the registry holds, that entry is replaced
        r = await http.post(url, json={"id": MODEL, "units_of_compute_per_token": 77})
        assert r.status_code == 200, r.text
        proposal = await chain_query(rpc_url, "gov/proposal", id=str(r.json()["proposal_id"]))
        [entry] = msgspec.json.decode(proposal["changes"][0]["value"])
        assert entry["id"] == MODEL and entry["units_of_compute_per_token"] == 77
        count = len(await chain_query(rpc_url, "gov/proposals"))
        assert count == 2

        # Bad bodies are refused with the reason, and no proposal is made
        for body, status, reason in [
            ({}, 400, "missing required field `id`"),
            ({"id": "acme/x"}, 400, "units_of_compute_per_token"),
            ({"id": "acme/x", "units_of_compute_per_token": 0}, 400, ">= 1"),
            ({"id": "bad id", "units_of_compute_per_token": 5}, 400, "regex"),
            ({"id": "acme/x", "units_of_compute_per_token": 5, "vram": 3}, 400, "vram"),
            ({"id": "acme/x", "units_of_compute_per_token": 5, "base_per_token_price": 1,
              "min_per_token_price": 9}, 400, "min_per_token_price"),
            (current, 409, "already holds"),
        ]:
            r = await http.post(url, json=body)
            assert r.status_code == status, (body, r.text)
            assert reason in r.json()["error"], (body, r.text)
        r = await http.post(url, content=b"not json")
        assert r.status_code == 400 and r.json()["error"].startswith("invalid body:")
        assert len(await chain_query(rpc_url, "gov/proposals")) == count
        nursery.cancel_scope.cancel()


async def test_a_proposal_the_chain_refuses_is_answered_with_its_reason(tmp_path):
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=90) as http:
        # Given host 0's API node, whose host never registered as a participant
        server, rpc_url, _ = await one_node_network(tmp_path, nursery)
        url = server.admin_url + PRICE_PATH
        # When it proposes a price, the chain refuses it (only participants may propose)
        r = await http.post(url, json={"price": 3, "denom": "mgonka"})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == 501 and "not a registered participant" in r.json()["error"]
        # and there is no proposal to show
        assert (await http.get(url)).status_code == 404
        assert await chain_lacks(rpc_url, "epochs/unit_of_compute_price_proposal",
                                 participant=HOSTS[0].address)
        nursery.cancel_scope.cancel()


def test_the_proposal_id_is_found_by_message_order_also_inside_msgexec():
    # Given a warm key's tx carrying two proposals, each wrapped in MsgExec as the sender does,
    # and the chain's result with one submit_proposal event per proposal, in order
    warm = PrivateKey(bytes([96]) * 32)
    proposals = [MsgSubmitProposal(
        proposer=HOSTS[0].address, title=f"{name} model proposal", initial_deposit=1,
        changes=(ParamChange(module="models", key="models", value="[]"),))
        for name in ("a", "b")]
    tx = sign_tx(TxBody(chain_id=CHAIN_ID, memo="", timeout_height=10, messages=tuple(
        MsgExec(grantee=warm.address, msgs=(p,)) for p in proposals)), warm)
    events = tuple(EventView(type=t, attributes=(AttributeView("proposal_id", str(i)),))
                   for t, i in (("message", 0), ("submit_proposal", 7), ("message", 0),
                                ("submit_proposal", 8)))
    view = TxView(hash="00", height=3, index=0, tx=encode(tx),
                  result=TxResultView(code=0, log="", codespace="", events=events))
    # Then each proposal gets its own id, and a message not in the tx none
    assert [proposal_id_in(view, p) for p in proposals] == [7, 8]
    other = msgspec.structs.replace(proposals[0], title="c model proposal")
    assert proposal_id_in(view, other) is None


NEWCOMER = PrivateKey(bytes([97]) * 32)
STRANGER = PrivateKey(bytes([98]) * 32)


def registration(key: PrivateKey, timeout_height: int, *, consensus: bytes,
                 participant: str | None = None, chain_id: str = CHAIN_ID) -> TxBody:
    msg = MsgRegisterParticipant(
        participant=participant or key.address, inference_url="http://newcomer.example:9000",
        validator_key=consensus, ml_nodes=(MlNodeSpec(node_id="gpu0", models=(MODEL,)),))
    return TxBody(chain_id=chain_id, messages=(msg,), memo="join via a seed node",
                  timeout_height=timeout_height)


def as_body(tx: Tx) -> dict:
    return {"tx": base64.b64encode(encode(tx)).decode()}


async def test_a_participant_registers_through_any_api_node_with_its_signed_tx(tmp_path):
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=90) as http:
        server, rpc_url, genesis_key = await one_node_network(tmp_path, nursery)
        url = f"{server.public_url}/v1/participants"
        async with RpcClient(rpc_url) as rpc:
            height = (await rpc.status()).latest_height
        consensus = ed25519.PrivateKey(bytes([7]) * 32).public_key

        def refusal(r: httpx.Response) -> tuple[int, str, str]:
            error = r.json()["error"]
            assert error["type"] == "invalid_request_error"
            return r.status_code, error["code"], error["message"]

        # Bad bodies and txs are refused with the reason, in OpenAI's error shape
        signed_by_stranger = registration(NEWCOMER, height + 50, consensus=consensus)
        foreign = Tx(body=signed_by_stranger, pubkey=STRANGER.public_key,
                     signature=STRANGER.sign(sign_bytes(signed_by_stranger)))
        good = sign_tx(registration(NEWCOMER, height + 50, consensus=consensus), NEWCOMER)
        forged = Tx(body=good.body, pubkey=good.pubkey, signature=STRANGER.sign(b"other"))
        send = sign_tx(TxBody(chain_id=CHAIN_ID, messages=(MsgSend(
            from_address=NEWCOMER.address, to_address=STRANGER.address, amount=1),), memo="",
            timeout_height=height + 50), NEWCOMER)
        other_chain = sign_tx(registration(NEWCOMER, height + 50, consensus=consensus,
                                           chain_id="another-chain"), NEWCOMER)
        taken_key = sign_tx(registration(STRANGER, height + 50, consensus=genesis_key),
                            STRANGER)
        for body, code, reason in [
            ({"tx": "***"}, "invalid_registration", "base64"),
            ({"transaction": as_body(good)["tx"]}, "invalid_registration", "transaction"),
            ({"tx": base64.b64encode(b"\x93\x01\x02").decode()}, "invalid_registration",
             "does not decode"),
            (as_body(foreign), "invalid_registration", "must be signed by"),
            (as_body(forged), "invalid_registration", "signature does not verify"),
            (as_body(send), "invalid_registration", "bank/MsgSend"),
            (as_body(other_chain), "invalid_registration", "another-chain"),
            (as_body(taken_key), "registration_refused", "already belongs to"),
        ]:
            r = await http.post(url, json=body)
            assert r.status_code == 400, (body, r.text)
            status, got_code, message = refusal(r)
            assert got_code == code and reason in message, (body, r.text)
        r = await http.post(url, content=b"{not json")
        assert refusal(r)[:2] == (400, "invalid_registration")
        # and nothing changed on chain
        assert await chain_lacks(rpc_url, "participants/participant", address=STRANGER.address)
        assert await chain_lacks(rpc_url, "participants/participant", address=NEWCOMER.address)

        # When the newcomer posts its own signed registration
        r = await http.post(url, json=as_body(good))
        # Then it is a participant with the URL, key and nodes it signed
        assert r.status_code == 200, r.text
        assert r.json()["address"] == NEWCOMER.address and r.json()["height"] is not None
        record = await chain_query(rpc_url, "participants/participant",
                                   address=NEWCOMER.address)
        assert record["inference_url"] == "http://newcomer.example:9000"
        assert base64.b64decode(record["validator_key"]) == consensus
        assert [n["node_id"] for n in record["ml_nodes"]] == ["gpu0"]
        # (and the node's own view of the participants has it from the next block on)
        async def listed() -> dict | None:
            r = await http.get(f"{url}/{NEWCOMER.address}")
            return r.json() if r.status_code == 200 else None

        assert (await each_block(rpc_url, listed))["inference_url"] == record["inference_url"]
        # And the same tx posted again is a replay the chain refuses
        r = await http.post(url, json=as_body(good))
        assert refusal(r)[:2] == (400, "registration_refused")
        nursery.cancel_scope.cancel()
