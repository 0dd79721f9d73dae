"""Logprob tokens as token ids: the executor asks its ML node for `return_tokens_as_token_ids`,
records the answer with "token_id:N" tokens (what response_hash commits to and validators
replay: a token's text need not re-tokenize to itself in a real BPE vocabulary), and gives the
developer the same tokens as texts (the ML node's /detokenize). A validator then replays the
recorded ids and an honest inference passes.

The network is test_node_inference's (two chain nodes, two API nodes with mock ML nodes); the
validation worker runs in the network's trio loop over host A's API node parts, as in
test_validation_worker_e2e. Public interfaces only: HTTP to the API nodes and the mock ML node,
the chain RPC.
"""

from __future__ import annotations

import base64

import httpx
import msgspec
import pytest

from api.node.responses import (
    DeveloperAsked,
    SseRecorder,
    developer_asked,
    developer_token_ids,
    ml_request_body,
    record_json,
)
from tests.api.test_node_inference import (
    DEV,
    HOSTS,
    MESSAGES,
    MODEL,
    Network,
    developer_client,
    finished_record,
    steer,
)
from tests.api.test_node_payload import get_payload, signed
from tests.api.test_validation_worker_e2e import guarded, start_worker

A, B = 0, 1
TOP = 3
MAX_TOKENS = 12
PREFIX = "token_id:"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("api-node-token-ids"))
    net.start()
    yield net
    net.stop()


def tokens_of(entries) -> list[tuple[str, list[str]]]:
    """(token, its top tokens) of each logprob entry (JSON dicts)."""
    return [(e["token"], [t["token"] for t in e["top_logprobs"]]) for e in entries]


async def direct(net: Network, host: int, *, as_ids: bool) -> list[tuple[str, list[str]]]:
    """What host's mock ML node answers to the same request, asked directly."""
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "logprobs": True,
            "top_logprobs": TOP}
    if as_ids:
        body["return_tokens_as_token_ids"] = True
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{net.hosts[host].mlnode_url}/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return tokens_of(r.json()["choices"][0]["logprobs"]["content"])


async def recorded_entries(net: Network, executor: int, inference_id: str) -> list[dict]:
    """The logprob entries of the payload the executor serves to a validator (the other host)."""
    validator = 1 - executor
    r = await get_payload(net, executor, inference_id, signed(HOSTS[validator], inference_id))
    assert r.status_code == 200, r.text
    response = base64.b64decode(r.json()["response"])
    try:
        objs = [msgspec.json.decode(response)]
    except msgspec.DecodeError:  # a stream: its SSE events
        objs = [msgspec.json.decode(line[len(b"data:"):]) for line in response.split(b"\n")
                if line.startswith(b"data:") and line[len(b"data:"):].strip() != b"[DONE]"]
    return [e for o in objs for c in o["choices"] if c.get("logprobs")
            for e in c["logprobs"]["content"]]


def all_ids(tokens: list[tuple[str, list[str]]]) -> bool:
    return all(t.startswith(PREFIX) for token, top in tokens for t in (token, *top))


@pytest.mark.parametrize("stream", [False, True])
async def test_the_record_holds_ids_and_the_developer_sees_texts(network, stream):
    # Given a developer asking host A (executing itself) for logprobs,
    client = developer_client(network, A)
    steer(network, A, A)
    try:
        # when the completion is served (streamed or not),
        kw = dict(model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, logprobs=True,
                  top_logprobs=TOP)
        if stream:
            seen: list[tuple[str, list[str]]] = []
            inference_id = None
            async for chunk in await client.chat.completions.create(stream=True, **kw):
                inference_id = chunk.id
                for choice in chunk.choices:
                    if choice.logprobs and choice.logprobs.content:
                        seen += [(e.token, [t.token for t in e.top_logprobs])
                                 for e in choice.logprobs.content]
        else:
            reply = await client.chat.completions.create(**kw)
            inference_id = reply.id
            seen = [(e.token, [t.token for t in e.top_logprobs])
                    for e in reply.choices[0].logprobs.content]
    finally:
        steer(network, A, None)
    await finished_record(network, inference_id)
    # then the developer sees exactly the texts the ML node gives without the ids option,
    expected = await direct(network, A, as_ids=False)
    assert seen == expected
    assert not any(t.startswith(PREFIX) for token, top in seen for t in (token, *top))
    # and the record served to validators holds the ML node's ids, top-k included.
    recorded = tokens_of(await recorded_entries(network, A, inference_id))
    assert all_ids(recorded)
    assert [(token, top[:TOP]) for token, top in recorded] == await direct(network, A,
                                                                           as_ids=True)


async def test_without_logprobs_asked_the_developer_gets_none(network):
    # Given a developer who does not ask for logprobs,
    steer(network, A, A)
    try:
        reply = await developer_client(network, A).chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)
    finally:
        steer(network, A, None)
    # then it gets none, while the record holds them as ids.
    assert reply.choices[0].logprobs is None
    await finished_record(network, reply.id)
    recorded = tokens_of(await recorded_entries(network, A, reply.id))
    assert recorded
    assert all_ids(recorded)


async def test_an_honest_inference_recorded_with_ids_passes_validation(network):
    # Given host A's validation worker running,
    running = await start_worker(network)
    try:
        # when host B serves an honest completion (recorded with token ids),
        steer(network, B, B)
        try:
            reply = await developer_client(network, B, DEV).chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, logprobs=True,
                top_logprobs=TOP)
        finally:
            steer(network, B, None)
        await finished_record(network, reply.id)
        assert all_ids(tokens_of(await recorded_entries(network, B, reply.id)))
        # then A is selected, replays the ids and sends a passing validation.
        duty = await network.call(guarded, running.worker.wait_duty, bytes.fromhex(reply.id),
                                  False, "sent")
        assert duty.executor == network.hosts[B].address
        assert duty.similarity_ppm == 1_000_000, duty
    finally:
        await network.call(running.stop)


# -- the pure parts ---------------------------------------------------------------------------

ID = "ab" * 32


def entry(token: str, top: list[str]) -> dict:
    return {"token": token, "logprob": -0.5, "bytes": None,
            "top_logprobs": [{"token": t, "logprob": -1.0, "bytes": None} for t in top]}


def answer(*entries: dict) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"},
         "logprobs": {"content": list(entries)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_the_ml_node_is_asked_for_ids_and_the_developer_view_gets_texts():
    body = msgspec.json.encode({"model": MODEL, "messages": MESSAGES, "logprobs": True,
                                "top_logprobs": 1})
    assert msgspec.json.decode(ml_request_body(body, top_logprobs=5, max_tokens=9)
                               )["return_tokens_as_token_ids"] is True
    asked = developer_asked(body)
    obj = answer(entry("token_id:104", ["token_id:104", "token_id:7"]),
                 entry("token_id:105", ["token_id:105", "token_id:8"]))
    # only what the developer will see is to be detokenized (top 1 of each position),
    assert developer_token_ids(obj, asked) == {104, 105}
    raw = msgspec.json.encode(obj)
    recorded, developer = record_json(raw, ID, asked, {104: "h", 105: "i"})
    # the record keeps the ids, the developer gets texts,
    assert "token_id:7" in recorded.response.decode()
    content = msgspec.json.decode(developer)["choices"][0]["logprobs"]["content"]
    assert tokens_of(content) == [("h", ["h"]), ("i", ["i"])]
    # an id without a known text stays in vLLM's id form,
    _, developer = record_json(raw, ID, asked, {104: "h"})
    content = msgspec.json.decode(developer)["choices"][0]["logprobs"]["content"]
    assert tokens_of(content) == [("h", ["h"]), ("token_id:105", ["token_id:105"])]
    # and a developer who asked for ids itself keeps them.
    own = DeveloperAsked(logprobs=True, top_logprobs=1, token_ids=True)
    assert developer_token_ids(obj, own) == set()
    _, developer = record_json(raw, ID, own, {104: "h", 105: "i"})
    content = msgspec.json.decode(developer)["choices"][0]["logprobs"]["content"]
    assert tokens_of(content)[0] == ("token_id:104", ["token_id:104"])


def test_a_stream_event_is_taken_then_rendered_with_texts():
    recorder = SseRecorder(ID, DeveloperAsked(stream=True, logprobs=True, top_logprobs=2))
    event = {"id": "x", "choices": [{"index": 0, "delta": {"content": "h"},
                                     "logprobs": {"content": [entry("token_id:104",
                                                                    ["token_id:104",
                                                                     "token_id:7"])]}}]}
    taken = recorder.take(b"data: " + msgspec.json.encode(event))
    assert taken.token_ids == {104, 7}
    out = recorder.render(taken, {104: "h", 7: "\x07"})
    content = msgspec.json.decode(out[len(b"data: "):])["choices"][0]["logprobs"]["content"]
    assert tokens_of(content) == [("h", ["h", "\x07"])]
    assert b"token_id:104" in recorder.recorded().response
