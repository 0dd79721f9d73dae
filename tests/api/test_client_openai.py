"""api.client with the official openai package, unchanged, against a small transfer-agent
stand-in (Quart-trio on Hypercorn, in the test's nursery) that checks every request with
api.signing and answers in OpenAI's wire shape, JSON and SSE. The sync client runs in a worker
thread (trio.to_thread) while the server runs in trio; the async client runs in trio itself."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
import trio
from quart import Response, request
from quart_trio import QuartTrio

from api.client import GonkaAuth, TransferAgentUnknown, gonka_async_http_client, gonka_http_client
from api.signing import (
    AUTHORIZATION,
    RequestTooOld,
    SigningError,
    VerifiedRequest,
    check_timestamp,
    parse_chat_request,
    verify_developer,
)
from chain.app.inference.params import InferenceParams
from chain.crypto.secp256k1 import PrivateKey
from testermint_py.http import serve_app

DEV = PrivateKey(bytes([7]) * 32)
TA = PrivateKey(bytes([8]) * 32)
OTHER_TA = PrivateKey(bytes([9]) * 32)
WORDS = ["Hello", ",", " gonka", "!"]
PARAMS = InferenceParams()


class Node:
    """What the stand-in saw: verified requests, raw bodies, status lookups."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.verified: list[VerifiedRequest] = []
        self.bodies: list[bytes] = []
        self.status_lookups = 0


def _error(e: SigningError) -> Response:
    body = {"error": {"message": str(e), "type": "invalid_request_error", "param": None,
                      "code": e.code}}
    return Response(json.dumps(body), status=e.status, content_type="application/json")


def _completion(verified: VerifiedRequest, model: str) -> dict:
    return {
        "id": verified.inference_id.hex(), "object": "chat.completion", "created": 1,
        "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "".join(WORDS),
                                 "refusal": None}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": len(WORDS), "total_tokens": 7},
    }


def _chunk(verified: VerifiedRequest, model: str, delta: dict, finish: str | None,
           usage: dict | None = None) -> bytes:
    chunk = {"id": verified.inference_id.hex(), "object": "chat.completion.chunk",
             "created": 1, "model": model, "system_fingerprint": None,
             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                          "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def make_app(node_ref: list[Node]) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.get("/v1/status")
    async def status():
        node_ref[0].status_lookups += 1
        return {"address": TA.address, "chain_id": "gonka-test"}

    @app.post("/v1/chat/completions")
    async def completions():
        node = node_ref[0]
        body = await request.get_data()
        try:
            verified = verify_developer(request.headers, body, TA.address)
            # Stand-in for the latest block time.
            check_timestamp(verified.timestamp_ns, time.time_ns(), PARAMS.max_request_age_s,
                            PARAMS.max_request_advance_s)
            chat = parse_chat_request(body)
        except SigningError as e:
            return _error(e)
        node.verified.append(verified)
        node.bodies.append(body)
        if not chat.stream:
            return _completion(verified, chat.model)

        async def events():
            yield _chunk(verified, chat.model, {"role": "assistant", "content": ""}, None)
            for word in WORDS:
                yield _chunk(verified, chat.model, {"content": word}, None)
            yield _chunk(verified, chat.model, {}, "stop")
            yield b"data: [DONE]\n\n"

        return Response(events(), content_type="text/event-stream")

    return app


@pytest.fixture
async def node(nursery) -> Node:
    ref: list[Node] = []
    binds = await nursery.start(serve_app, make_app(ref))
    ref.append(Node(binds[0]))
    return ref[0]


MESSAGES = [{"role": "user", "content": "Say hello"}]


def sync_openai(node: Node, **kwargs) -> openai.OpenAI:
    # The key as `gonka keys export NAME` prints it.
    http_client = gonka_http_client(DEV.secret.hex(), node.url, **kwargs)
    return openai.OpenAI(base_url=f"{node.url}/v1", api_key="unused", http_client=http_client,
                         max_retries=0)


async def test_sync_openai_client_non_streaming(node):
    client = sync_openai(node)

    def run():
        with client:
            first = client.chat.completions.create(model="qwen", messages=MESSAGES,
                                                   max_tokens=8)
            second = client.chat.completions.create(model="qwen", messages=MESSAGES)
        return first, second

    first, second = await trio.to_thread.run_sync(run)

    assert first.choices[0].message.content == "Hello, gonka!"
    assert first.usage.completion_tokens == 4
    assert [v.requester for v in node.verified] == [DEV.address, DEV.address]
    assert first.id == node.verified[0].inference_id.hex()
    assert second.id == node.verified[1].inference_id.hex() != first.id
    assert node.status_lookups == 1  # learnt once, then cached
    assert parse_chat_request(node.bodies[0]).token_limit == 8


async def test_sync_openai_client_streaming(node):
    client = sync_openai(node)

    def run():
        with client, client.chat.completions.create(model="qwen", messages=MESSAGES,
                                                    stream=True) as stream:
            return [chunk for chunk in stream]

    chunks = await trio.to_thread.run_sync(run)

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello, gonka!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.id for c in chunks} == {node.verified[0].inference_id.hex()}
    assert parse_chat_request(node.bodies[0]).stream is True


async def test_async_openai_client_in_trio_streaming_and_not(node):
    http_client = gonka_async_http_client(DEV.secret.hex(), f"{node.url}/v1/",
                                          transfer_address=TA.address)
    client = openai.AsyncOpenAI(base_url=f"{node.url}/v1", api_key="unused",
                                http_client=http_client, max_retries=0)
    async with client:
        whole = await client.chat.completions.create(model="qwen", messages=MESSAGES)
        stream = await client.chat.completions.create(model="qwen", messages=MESSAGES,
                                                      stream=True)
        async with stream:
            text = "".join([c.choices[0].delta.content or "" async for c in stream])

    assert whole.choices[0].message.content == text == "Hello, gonka!"
    assert len(node.verified) == 2
    assert node.status_lookups == 0  # the address was given


async def test_signature_for_another_transfer_agent_is_an_authentication_error(node):
    client = sync_openai(node, transfer_address=OTHER_TA.address)

    with client, pytest.raises(openai.AuthenticationError) as e:
        await trio.to_thread.run_sync(
            lambda: client.chat.completions.create(model="qwen", messages=MESSAGES))

    assert e.value.status_code == 401
    assert e.value.code == "wrong_transfer_agent"
    assert f"signed for transfer agent {OTHER_TA.address}" in e.value.message
    assert node.verified == []


async def test_plain_openai_client_is_told_to_sign(node):
    client = openai.OpenAI(base_url=f"{node.url}/v1", api_key="sk-anything", max_retries=0)

    with client, pytest.raises(openai.AuthenticationError) as e:
        await trio.to_thread.run_sync(
            lambda: client.chat.completions.create(model="qwen", messages=MESSAGES))

    assert e.value.code == "missing_signature"
    assert "gonka_http_client" in e.value.message


async def test_stale_request_is_a_bad_request_naming_the_window(node):
    age = PARAMS.max_request_age_s
    long_ago = time.time_ns() - (age + 60) * 1_000_000_000
    auth = GonkaAuth(DEV, node.url, clock=lambda: long_ago)
    client = openai.OpenAI(base_url=f"{node.url}/v1", api_key="unused",
                           http_client=httpx.Client(auth=auth), max_retries=0)

    with client, pytest.raises(openai.BadRequestError) as e:
        await trio.to_thread.run_sync(
            lambda: client.chat.completions.create(model="qwen", messages=MESSAGES))

    assert e.value.code == RequestTooOld.code
    assert f"at most {age} s" in e.value.message


async def test_get_requests_go_unsigned_without_the_placeholder_token(node):
    seen: list[httpx.Request] = []
    async with gonka_async_http_client(
            DEV, node.url, event_hooks={"request": [_record(seen)]}) as client:
        response = await client.get("/v1/status", headers={AUTHORIZATION: "Bearer unused"})
    assert response.json()["address"] == TA.address
    assert AUTHORIZATION not in seen[0].headers
    assert node.status_lookups == 1  # only the GET itself: nothing to sign


def _record(seen: list[httpx.Request]):
    async def hook(req: httpx.Request) -> None:
        seen.append(req)
    return hook


@pytest.mark.parametrize("status, body, says", [
    (404, b"not found", "HTTP 404"),
    (200, b'{"chain_id":"x"}', "address"),
    (200, b'{"address":"gonka1nope"}', "invalid address"),
])  # fmt: skip
def test_unknown_transfer_agent_address_is_a_clear_error(status, body, says):
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/v1/status"
        return httpx.Response(status, content=body)

    client = gonka_http_client(DEV, "http://ta.example:9000/v1",
                               transport=httpx.MockTransport(handler))
    with client, pytest.raises(TransferAgentUnknown, match=says) as e:
        client.post("/v1/chat/completions", content=b"{}")
    assert "transfer_address=" in str(e.value)
    assert e.value.url == "http://ta.example:9000/v1/status"
