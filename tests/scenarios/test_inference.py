"""Acceptance scenarios: inference through the network (gonka-testermint.md section 5, items
5-8, 14, 21, 23, adapted: our error codes, real token counts). Three participants, one network
for the module; a developer's `openai` client signs through `api.client`."""

from __future__ import annotations

import base64
import time

import httpx
import openai
import pytest
import trio

from api.signing import sign_request
from testermint_py.network import MODEL, Network
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow

PRICE = 10
MESSAGES = [{"role": "user", "content": "Say something about blocks"}]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_network(tmp_path_factory.mktemp("inference"), n=3,
                         params={"inference": {"grace_per_token_price": PRICE}}) as network:
        yield network


def client(net: Network, i: int) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{net.participants[i].public_url}/v1",
                              api_key="unused", max_retries=0,
                              http_client=net.developer_client(i))


async def record(net: Network, inference_id: str, *, statuses=("finished", "validated")) -> dict:
    """The chain record once its status is one of `statuses` (read after every block)."""
    async def done() -> dict | None:
        r = await net._http("GET", f"{net.participants[0].public_url}/v1/chat/completions/"
                            f"{inference_id}")
        return r.json() if r.status_code == 200 and r.json()["status"] in statuses else None
    return await net.each_block(done, what=f"inference {inference_id[:16]} {statuses}")


async def test_a_signed_completion_is_served_recorded_and_paid(net):
    dev = net.developers[0].address
    before = await net.balance(dev)
    # When the developer asks participant 0 for a completion,
    reply = await client(net, 0).chat.completions.create(model=MODEL, messages=MESSAGES,
                                                         max_tokens=16)
    # then the answer is a chat completion whose id is the inference id,
    assert reply.choices[0].message.content and reply.usage.completion_tokens >= 1
    # the chain records it between the right parties with the executor's real counts,
    rec = await record(net, reply.id)
    assert rec["requested_by"] == dev
    assert rec["transfer_agent"] == net.participants[0].account
    assert rec["executor"] in {p.account for p in net.participants}
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (
        reply.usage.prompt_tokens, reply.usage.completion_tokens)
    # and the developer paid exactly the cost.
    cost = (reply.usage.prompt_tokens + reply.usage.completion_tokens) * PRICE
    assert rec["actual_cost"] == cost
    assert await net.balance(dev) == before - cost


async def test_a_stream_carries_the_inference_id_and_ends_with_done(net):
    # When the developer streams a completion through participant 1,
    http = net.developer_client(1)
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 12, "stream": True}
    lines = []
    async with http.stream("POST", f"{net.participants[1].public_url}/v1/chat/completions",
                           json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                lines.append(line[6:])
    # then every chunk names the same id and the stream ends with [DONE],
    assert lines[-1] == "[DONE]"
    ids = {httpx.Response(200, content=chunk).json()["id"] for chunk in lines[:-1]}
    assert len(ids) == 1
    # and the chain records it like a non-streamed one.
    rec = await record(net, ids.pop())
    assert rec["completion_tokens"] >= 1


async def test_refused_requests_change_nothing(net):
    dev = net.developers[0]
    before = await net.balance(dev.address)
    p0, p1 = net.participants[0], net.participants[1]
    body = httpx.Request("POST", "http://x", json={"model": MODEL, "messages": MESSAGES,
                                                   "max_tokens": 8}).content
    url = f"{p0.public_url}/v1/chat/completions"

    async def post(headers: dict) -> httpx.Response:
        return await net._http("POST", url, content=body,
                               headers={**headers, "Content-Type": "application/json"})
    # A signature naming another transfer agent is a 401,
    r = await post(sign_request(dev, body, p1.account, time.time_ns()))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "wrong_transfer_agent")
    # a request signed an hour ago a 400,
    r = await post(sign_request(dev, body, p0.account, time.time_ns() - 3600 * 10**9))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "request_too_old")
    # and the same signed request twice: served once, then a 400 replay.
    signed = sign_request(dev, body, p0.account, time.time_ns())
    assert (await post(signed)).status_code == 200
    r = await post(signed)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "request_replayed")
    # Only the one served inference moved the balance.
    served = await record(net, base64.b64decode(signed["Authorization"]).hex())
    assert await net.balance(dev.address) == before - served["actual_cost"]


async def test_fifty_concurrent_requests_are_all_recorded(net):
    # When 50 small requests go at once, spread over the three transfer agents,
    ids: list[str] = []

    async def one(k: int) -> None:
        reply = await client(net, k % 3).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"request {k}"}], max_tokens=8)
        ids.append(reply.id)
    async with trio.open_nursery() as nursery:
        for k in range(50):
            nursery.start_soon(one, k)
    # then all 50 are served and each ends finished (or validated) on chain.
    assert len(set(ids)) == 50
    for inference_id in ids:
        await record(net, inference_id)
    await net.check_invariants()


async def test_an_ml_node_answering_garbage_is_a_502_and_the_escrow_comes_back(net):
    dev = net.developers[0].address
    # Given every ML node answering chat completions with invalid JSON,
    for i in range(3):
        await net.set_mock(i, invalid_json_paths=["/v1/chat"])
    try:
        before = await net.balance(dev)
        # when the developer asks, it gets a 502 (openai.APIStatusError),
        with pytest.raises(openai.APIStatusError) as failed:
            await client(net, 2).chat.completions.create(model=MODEL, messages=MESSAGES,
                                                         max_tokens=8)
        assert failed.value.status_code == 502
    finally:
        for i in range(3):
            await net.set_mock(i, invalid_json_paths=[])
    # and nothing was charged: no start was recorded for a refused execution.
    await net.wait_height((await net.status())["height"] + 2)
    assert await net.balance(dev) == before
