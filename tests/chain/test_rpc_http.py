"""RPC HTTP endpoints through a real socket: a MemoryNodeView served by Hypercorn on port 0.

`served` and `tx_raw` are imported by the other RPC test files too.
"""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest
import trio

from chain.app.abci import Attribute, CheckTxResult, Event, QueryResult, TxResult
from chain.rpc import RpcConfig, serve_rpc
from chain.rpc.testing import VALIDATOR_ID, MemoryNodeView
from chain.types import encode, tx_hash
from tests.chain.builders import signed


def tx_raw(n: int) -> bytes:
    """A distinct, validly signed tx."""
    return encode(signed(memo=f"rpc-{n}"))


@asynccontextmanager
async def served(view: MemoryNodeView, config: RpcConfig | None = None, port: int = 0):
    """Serve `view` for the duration of the block; yields the base URL."""
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: serve_rpc(
            view, "127.0.0.1", port, config=config, task_status=task_status))
        yield url
        nursery.cancel_scope.cancel()


@pytest.fixture
def view() -> MemoryNodeView:
    v = MemoryNodeView()
    v.commit_block([])
    v.commit_block([tx_raw(1), tx_raw(2)],
                   events=[Event("rewards", (Attribute("epoch", "1"),))])
    return v


@pytest.fixture
async def http(view):
    async with served(view) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


async def test_status_reports_the_latest_block_in_hex(view, http):
    # Given a node at height 2
    # When a client asks for the status
    r = await http.get("/status")

    # Then it gets the chain, the latest height and hashes in hex
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    s = r.json()
    latest = view.blocks[2]
    assert s["chain_id"] == "gonka-test-1"
    assert s["latest_height"] == 2
    assert s["latest_block_hash"] == latest.hash.hex()
    assert s["latest_app_hash"] == latest.header.app_hash.hex()
    assert s["node_id"] == VALIDATOR_ID.hex()
    assert s["validator"]["voting_power"] == 10
    assert s["catching_up"] is False


async def test_block_by_height_has_hex_hashes_and_base64_txs(view, http):
    # Given block 2 with two txs
    block = view.blocks[2]

    # When it is fetched
    r = await http.get("/blocks/2")

    # Then its hash and header hashes are hex, its txs base64, its tx hashes hex
    assert r.status_code == 200
    b = r.json()
    assert b["hash"] == block.hash.hex()
    assert b["header"]["height"] == 2
    assert b["header"]["data_hash"] == block.header.data_hash.hex()
    assert b["header"]["last_block_id"]["hash"] == view.blocks[1].hash.hex()
    assert [base64.b64decode(t) for t in b["txs"]] == list(block.txs)
    assert b["tx_hashes"] == [tx_hash(t).hex() for t in block.txs]
    assert b["last_commit"]["height"] == 1
    assert b["last_commit"]["signatures"][0]["flag"] == "commit"


@pytest.mark.parametrize("path,status,code", [
    ("/blocks/3", 404, "not_found"),
    ("/blocks/0", 400, "bad_request"),
    ("/blocks/-1", 400, "bad_request"),
    ("/blocks/two", 400, "bad_request"),
    ("/blocks/99999999999999999999999", 400, "bad_request"),
    ("/commits/3", 404, "not_found"),
    ("/commits/x", 400, "bad_request"),
    ("/txs/" + "00" * 32, 404, "not_found"),
    ("/txs/" + "zz" * 32, 400, "bad_request"),
    ("/txs/abcd", 400, "bad_request"),
    ("/nowhere", 404, "not_found"),
])
async def test_bad_and_unknown_lookups_get_json_errors(http, path, status, code):
    # Given a node at height 2
    # When a client asks for something unknown or malformed
    r = await http.get(path)

    # Then the status says which, with a JSON error body
    assert error_of(r) == (status, code)


async def test_wrong_method_is_a_json_405(http):
    assert error_of(await http.delete("/status")) == (405, "method_not_allowed")


async def test_commit_by_height(view, http):
    # When the commit of block 2 is fetched
    r = await http.get("/commits/2")

    # Then it names the block and its signatures in hex
    c = r.json()
    assert r.status_code == 200
    assert c["height"] == 2
    assert c["block_id"]["hash"] == view.blocks[2].hash.hex()
    assert c["signatures"][0]["validator"] == VALIDATOR_ID.hex()
    assert c["signatures"][0]["signature"] == (bytes([7]) * 64).hex()


async def test_tx_by_hash_has_its_place_and_result(view, http):
    # Given the second tx of block 2
    raw = view.blocks[2].txs[1]

    # When it is fetched by hash (upper-case hex is accepted too)
    r = await http.get(f"/txs/{tx_hash(raw).hex().upper()}")

    # Then it comes with height, index, bytes and result events
    t = r.json()
    assert r.status_code == 200
    assert (t["hash"], t["height"], t["index"]) == (tx_hash(raw).hex(), 2, 1)
    assert base64.b64decode(t["tx"]) == raw
    assert t["result"]["code"] == 0
    assert t["result"]["events"] == [
        {"type": "tx", "attributes": [{"key": "hash", "value": tx_hash(raw).hex()}]}]


def post_body(raw: bytes, mode: str) -> dict:
    return {"tx": base64.b64encode(raw).decode(), "mode": mode}


async def test_broadcast_async_queues_without_a_verdict(view, http):
    # Given a tx the node would refuse at check
    raw = tx_raw(10)
    view.verdicts[tx_hash(raw)] = CheckTxResult(code=101, log="insufficient funds")

    # When it is broadcast in async mode
    r = await http.post("/txs", json=post_body(raw, "async"))

    # Then the answer is only its hash: no verdict was awaited
    b = r.json()
    assert r.status_code == 200
    assert (b["hash"], b["mode"], b["code"], b["height"]) == (tx_hash(raw).hex(), "async", 0,
                                                              None)
    assert view.broadcasts == [(raw, "async")]


async def test_broadcast_sync_returns_check_tx_verdict(view, http):
    # Given a tx the node refuses at check
    raw = tx_raw(11)
    view.verdicts[tx_hash(raw)] = CheckTxResult(code=101, log="insufficient funds",
                                                codespace="bank")

    # When it is broadcast in sync mode
    r = await http.post("/txs", json=post_body(raw, "sync"))

    # Then the refusal is a 200 result carrying the code, not an HTTP error
    b = r.json()
    assert r.status_code == 200
    assert (b["code"], b["log"], b["codespace"]) == (101, "insufficient funds", "bank")
    assert view.pending == []


async def test_broadcast_commit_waits_for_inclusion(view, http):
    # Given a client broadcasting in commit mode
    raw = tx_raw(12)
    responses: list[httpx.Response] = []

    async def broadcast() -> None:
        responses.append(await http.post("/txs", json=post_body(raw, "commit")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(broadcast)
        # When the node includes it in block 3
        await view.wait_for_pending(1)
        assert responses == []
        view.commit_block(results=[TxResult(events=(Event("transfer"),))])

    # Then the answer carries the height and what the tx did
    b = responses[0].json()
    assert (b["code"], b["height"]) == (0, 3)
    assert b["result"]["events"] == [{"type": "transfer", "attributes": []}]


async def test_broadcast_commit_that_times_out_has_no_height(view, http):
    # Given a node whose commit wait ends before any block
    view.commit_timeout = 0

    # When a tx is broadcast in commit mode
    b = (await http.post("/txs", json=post_body(tx_raw(13), "commit"))).json()

    # Then it passed check but its height is unknown
    assert (b["code"], b["height"], b["result"]) == (0, None, None)


async def test_broadcast_commit_refused_at_check_answers_at_once(view, http):
    raw = tx_raw(14)
    view.verdicts[tx_hash(raw)] = CheckTxResult(code=5, log="duplicate")
    b = (await http.post("/txs", json=post_body(raw, "commit"))).json()
    assert (b["code"], b["height"]) == (5, None)


@pytest.mark.parametrize("content,code", [
    (b"not json", "bad_request"),
    (b'{"mode": "sync"}', "bad_request"),
    (b'{"tx": "AAAA", "mode": "fast"}', "bad_request"),
    (b'{"tx": "***", "mode": "sync"}', "bad_request"),
    (b'{"tx": "AAAA", "mode": "sync", "extra": 1}', "bad_request"),
    (b'{"tx": "AAAA", "mode": "sync"}', "invalid_tx"),
])
async def test_bad_broadcast_bodies_are_400_and_reach_no_node(view, http, content, code):
    # When a malformed body or undecodable tx is posted
    r = await http.post("/txs", content=content)

    # Then it is refused with the decoder's message and the node never sees it
    assert error_of(r) == (400, code)
    assert view.broadcasts == []


async def test_oversized_body_is_413(view):
    # Given a server that takes bodies up to 1000 bytes
    async with served(view, RpcConfig(max_body_bytes=1000)) as url, \
            httpx.AsyncClient(base_url=url) as http:
        # When a larger body is posted
        r = await http.post("/txs", content=b"{" + b" " * 2000 + b"}")

    # Then it is refused as too large
    assert error_of(r) == (413, "too_large")
    assert view.broadcasts == []


async def test_query_passes_path_params_and_height_and_embeds_json(view, http):
    # Given an app that answers bank/balance
    seen = []

    def handler(path, params, height):
        seen.append((path, dict(params), height))
        return QueryResult(value=msgspec.json.encode({"amount": 5}), height=height or 2)

    view.query_handler = handler

    # When a client queries it at height 1
    r = await http.get("/query/bank/balance", params={"address": "gonka1x", "height": "1"})

    # Then the app got the path, the params without height, and the height; the value is JSON
    assert r.status_code == 200
    assert r.json() == {"height": 1, "value": {"amount": 5}}
    assert seen == [("bank/balance", {"address": "gonka1x"}, 1)]


@pytest.mark.parametrize("params,status,code", [
    ({"height": "3"}, 404, "not_found"),
    ({"height": "latest"}, 400, "bad_request"),
])
async def test_query_bad_height(http, params, status, code):
    assert error_of(await http.get("/query/bank/balance", params=params)) == (status, code)


async def test_failed_query_is_400_with_the_app_code(view, http):
    # Given the default app, which knows no query path
    # When a client queries one
    r = await http.get("/query/nothing/here")

    # Then the app's refusal is a 400 naming its code
    assert error_of(r) == (400, "query_failed")
    assert r.json()["error"]["app_code"] == 1
    assert "nothing/here" in r.json()["error"]["message"]


async def test_query_returning_invalid_json_is_a_500(view, http):
    view.query_handler = lambda path, params, height: QueryResult(value=b"{nope")
    assert error_of(await http.get("/query/x")) == (500, "internal")


async def test_oversized_chunked_body_is_413_too(view):
    # Given a server that takes bodies up to 1000 bytes
    async def chunks():
        for _ in range(10):
            yield b" " * 500

    async with served(view, RpcConfig(max_body_bytes=1000)) as url, \
            httpx.AsyncClient(base_url=url) as http:
        # When a larger body is streamed without a content length
        r = await http.post("/txs", content=chunks())

    # Then it is refused as too large all the same
    assert error_of(r) == (413, "too_large")
    assert view.broadcasts == []


async def test_node_failure_is_a_json_500_without_details(view, http):
    # Given a node view that fails
    async def broken_status():
        raise RuntimeError("database is locked at /secret/path")

    view.status = broken_status

    # When the status is asked for
    r = await http.get("/status")

    # Then the client gets a JSON 500 naming the error type only
    assert error_of(r) == (500, "internal")
    assert "secret" not in r.text
