"""The mock ML node through HTTP: the real node's routes, schema types and 409s, scripted PoC
weight and fraud (made-up and duplicated nonces) delivered to a callback server run by the test,
OpenAI-shaped inference, per-model responses, replay scoring, and the scripted faults (invalid
JSON, delay, cut stream, disappearing, failed or crashed backend)."""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import numpy as np
import pytest
import trio
from quart import Response, request
from quart_trio import QuartTrio

from chain.types.inference_scoring import score
from chain.types.poc import TEST_PARAMS, PowInitRequest, ProofBatch, ValidatedBatch
from mlnode.inference.replay import ReplayResponse, parse_chat_logprobs
from mlnode.service.schema import ErrorView, HealthView, OkView, PowStatus, PowView, StateView
from mlnode.service.state import Action, Conflict, NodeMode, NodeStatus, transition
from testermint_py.http import serve_app
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode
from testermint_py.mock_mlnode.poc import MockPocFunction

API = "/api/v1"
BLOCK = "ab" * 32
KEY = "02" + "11" * 32
OTHER_KEY = "03" + "22" * 32
MODEL = "mock-llama"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
THRESHOLD = 0.98   # the chain's default validation_threshold_ppm / 1e6


def decode(response: httpx.Response, type_: type):
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=type_)


class Callbacks:
    """The API node's callback endpoints: records the ProofBatches the mock POSTs."""

    def __init__(self) -> None:
        self.generated: list[ProofBatch] = []
        self.validated: list[ValidatedBatch] = []
        self.changed = trio.Event()
        self.app = QuartTrio("callbacks")

        @self.app.post("/cb/<kind>")
        async def receive(kind: str) -> Response:
            body = await request.get_data(as_text=False)
            if kind == "generated":
                self.generated.append(msgspec.json.decode(body, type=ProofBatch))
            else:
                self.validated.append(msgspec.json.decode(body, type=ValidatedBatch))
            self.changed.set()
            self.changed = trio.Event()
            return Response("{}", content_type="application/json")

    def nonces(self, key: str = KEY) -> list[int]:
        return [n for b in self.generated if b.public_key == key for n in b.nonces]

    def batch(self, key: str = KEY) -> ProofBatch:
        """Everything generated for `key`, as one batch for a validator."""
        mine = [b for b in self.generated if b.public_key == key]
        return ProofBatch(public_key=key, block_hash=BLOCK, block_height=10,
                          nonces=[n for b in mine for n in b.nonces],
                          dist=[d for b in mine for d in b.dist])

    async def wait_for(self, predicate) -> None:
        while not predicate():
            await self.changed.wait()


class Mock:
    def __init__(self, http: httpx.AsyncClient, callback_url: str) -> None:
        self.http = http
        self.callback_url = callback_url

    async def script(self, **fields) -> MockScript:
        return decode(await self.http.post("/mock/script", json=fields), MockScript)

    def init_body(self, **changes) -> bytes:
        fields = dict(block_hash=BLOCK, block_height=10, public_key=KEY, node_id=1,
                      node_count=2, params=TEST_PARAMS, url=self.callback_url)
        fields.update(changes)
        return msgspec.json.encode(PowInitRequest(**fields))

    async def up(self, model: str = MODEL) -> None:
        r = await self.http.post(f"{API}/inference/up", json={"model": model})
        assert decode(r, OkView) == OkView()

    async def chat(self, **fields) -> dict:
        r = await self.http.post("/v1/chat/completions", json={"messages": MESSAGES, **fields})
        assert r.status_code == 200, r.text
        return r.json()

    async def state(self) -> StateView:
        return decode(await self.http.get(f"{API}/state"), StateView)


@asynccontextmanager
async def running_mock(script: MockScript | None = None, **config) -> AsyncIterator[
        tuple[Mock, Callbacks]]:
    callbacks = Callbacks()
    cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.01,
                                  watchdog_interval_s=0.01, **config)
    async with trio.open_nursery() as nursery:
        cb_binds = await nursery.start(serve_app, callbacks.app)
        url = await nursery.start(functools.partial(serve_mock_mlnode, cfg, script=script))
        async with httpx.AsyncClient(base_url=url) as client:
            yield Mock(client, f"{cb_binds[0]}/cb"), callbacks
        nursery.cancel_scope.cancel()


def conflict(mode: NodeMode, action: Action) -> dict:
    """The real state table's refusal, as the real node answers it."""
    with pytest.raises(Conflict) as refused:
        transition(NodeStatus(mode), action)
    return msgspec.to_builtins(ErrorView(refused.value.reason, mode.value))


# -- control API ------------------------------------------------------------------------------

async def test_control_routes_answer_the_real_nodes_schema_types():
    async with running_mock() as (mock, _):
        assert await mock.state() == StateView("STOPPED")
        health = decode(await mock.http.get(f"{API}/health"), HealthView)
        assert (health.status, health.state, health.inference_running) == ("OK", "STOPPED", False)
        assert decode(await mock.http.get(f"{API}/pow/status"), PowStatus).status == "NOT_LOADED"

        view = decode(await mock.http.post(f"{API}/pow/init/validate",
                                           content=mock.init_body()), PowView)
        assert view.pow_status.status in ("LOADING", "VALIDATING")
        assert await mock.state() == StateView("POW")
        stopped = decode(await mock.http.post(f"{API}/pow/stop"), PowView)
        assert stopped.pow_status.status == "NOT_LOADED"

        await mock.up()
        health = decode(await mock.http.get(f"{API}/health"), HealthView)
        assert (health.state, health.inference_running) == ("INFERENCE", True)
        assert decode(await mock.http.post(f"{API}/inference/down"), OkView) == OkView()
        assert decode(await mock.http.post(f"{API}/stop"), OkView) == OkView()
        assert await mock.state() == StateView("STOPPED")

        # A bad body is a 400 naming the real type, like the real node's
        r = await mock.http.post(f"{API}/pow/init/generate", content=b'{"block_hash": "ab"}')
        assert r.status_code == 400
        assert r.json()["error"].startswith("cannot decode PowInitRequest")


async def test_conflicting_commands_get_the_real_nodes_409s():
    async with running_mock() as (mock, _):
        # Stopped: no PoC command, no replay, no proxied inference
        r = await mock.http.post(f"{API}/pow/phase/generate")
        assert (r.status_code, r.json()) == (409, conflict(NodeMode.STOPPED, Action.POW_COMMAND))
        batch = msgspec.json.encode(ProofBatch(public_key=KEY, block_hash=BLOCK, block_height=1,
                                               nonces=[1], dist=[0.5]))
        r = await mock.http.post(f"{API}/pow/validate", content=batch)
        assert (r.status_code, r.json()["state"]) == (409, "STOPPED")
        r = await mock.http.post(f"{API}/inference/replay",
                                 json={"prompt_token_ids": [1], "output_token_ids": [2]})
        assert (r.status_code, r.json()) == (409, conflict(NodeMode.STOPPED,
                                                           Action.INFERENCE_COMMAND))
        assert (await mock.http.post("/v1/chat/completions", json={})).status_code == 503

        # Serving inference: no PoC
        await mock.up()
        r = await mock.http.post(f"{API}/pow/init/generate", content=mock.init_body())
        assert (r.status_code, r.json()) == (409, conflict(NodeMode.INFERENCE, Action.START_POW))

        # Running PoC: no inference
        await mock.http.post(f"{API}/stop")
        await mock.http.post(f"{API}/pow/init/generate", content=mock.init_body())
        r = await mock.http.post(f"{API}/inference/up", json={"model": MODEL})
        assert (r.status_code, r.json()) == (409, conflict(NodeMode.POW,
                                                           Action.START_INFERENCE))
        assert await mock.state() == StateView("POW")


# -- PoC ----------------------------------------------------------------------------------------

async def test_generation_posts_exactly_the_scripted_weight_as_proof_batches():
    script = MockScript(weight=30, weight_per_batch=10)
    async with running_mock(script) as (mock, callbacks):
        # Given a mock told to generate as node 1 of 2
        r = await mock.http.post(f"{API}/pow/init/generate", content=mock.init_body())
        assert r.status_code == 200, r.text

        # When it has delivered its weight
        await callbacks.wait_for(lambda: len(callbacks.nonces()) >= 30)
        while (status := decode(await mock.http.get(f"{API}/pow/status"), PowStatus)).sent < 30:
            await trio.sleep(0.005)     # the sender counts a POST once its answer is back

        # Then it delivered exactly that many, sent them all, and found no more
        assert (status.status, status.valid, status.sent, status.pending) == (
            "GENERATING", 30, 30, 0)
        assert status.checked > 30
        got = callbacks.nonces()
        assert len(got) == len(set(got)) == 30 and all(n % 2 == 1 for n in got)
        # ... each batch names the session, with the BLAKE3 distances, all valid
        assert all((b.block_hash, b.block_height, b.node_id) == (BLOCK, 10, 1)
                   for b in callbacks.generated)
        function = MockPocFunction(TEST_PARAMS, bytes.fromhex(BLOCK))
        expected = function.distances(bytes.fromhex(KEY), np.asarray(got, dtype=np.uint64))
        assert [d for b in callbacks.generated for d in b.dist] == expected.tolist()
        assert max(expected) < TEST_PARAMS.r_target

        # When the weight is raised at run time, the same session finds the difference
        await mock.script(weight=45)
        await callbacks.wait_for(lambda: len(callbacks.nonces()) >= 45)
        assert len(set(callbacks.nonces())) == 45


async def test_a_validator_mock_agrees_with_an_honest_generator_and_flags_a_fraud():
    async with running_mock(MockScript(weight=100)) as (generator, callbacks), \
            running_mock() as (validator, _):
        # Given an honest session for KEY and a cheating one (20% made up) for OTHER_KEY
        await generator.http.post(f"{API}/pow/init/generate", content=generator.init_body())
        await callbacks.wait_for(lambda: len(callbacks.nonces(KEY)) == 100)
        await generator.script(poc_fraud=0.2)
        await generator.http.post(f"{API}/pow/init/generate",
                                  content=generator.init_body(public_key=OTHER_KEY))
        await callbacks.wait_for(lambda: len(callbacks.nonces(OTHER_KEY)) == 100)

        # When a validator mock recomputes both
        await validator.http.post(f"{API}/pow/init/validate", content=validator.init_body())
        honest = decode(await validator.http.post(
            f"{API}/pow/validate", content=msgspec.json.encode(callbacks.batch(KEY))),
            ValidatedBatch)
        fraud = decode(await validator.http.post(
            f"{API}/pow/validate", content=msgspec.json.encode(callbacks.batch(OTHER_KEY))),
            ValidatedBatch)

    # Then the honest distances are recomputed exactly, and the made-up ones caught
    assert (honest.n_checked, honest.n_invalid, honest.fraud_detected) == (100, 0, False)
    assert honest.dist == honest.received_dist
    assert (fraud.n_checked, fraud.n_invalid, fraud.fraud_detected) == (100, 20, True)


async def test_duplicated_nonces_claim_weight_the_node_did_not_find():
    script = MockScript(weight=100, weight_per_batch=20, poc_duplicates=0.25)
    async with running_mock(script) as (generator, callbacks), \
            running_mock() as (validator, _):
        # Given a mock that repeats a quarter of every batch's claims
        await generator.http.post(f"{API}/pow/init/generate", content=generator.init_body())
        await callbacks.wait_for(lambda: len(callbacks.nonces()) >= 100)
        status = decode(await generator.http.get(f"{API}/pow/status"), PowStatus)
        claimed = callbacks.batch()

        # Then it claims its weight of 100 nonces (callbacks carry them in generation order,
        # 20 per generation batch), but only 75 distinct ones
        assert status.valid == 100
        assert len(claimed.nonces) == 100 and len(set(claimed.nonces)) == 75
        batches = [claimed.nonces[i:i + 20] for i in range(0, 100, 20)]
        assert len(set(batches[0])) == 15                    # 5 repeats within the first batch
        for i, later in enumerate(batches[1:], start=1):     # 5 across batches in each later one
            earlier = {n for b in batches[:i] for n in b}
            assert len(set(later)) == 20 and len(set(later) & earlier) == 5
        # ... every repeat is a valid nonce with its true distance (not a conflicting one: a
        # sorted unique nonce list keeps it once)
        function = MockPocFunction(TEST_PARAMS, bytes.fromhex(BLOCK))
        expected = function.distances(bytes.fromhex(KEY),
                                      np.asarray(claimed.nonces, dtype=np.uint64))
        assert claimed.dist == expected.tolist() and max(expected) < TEST_PARAMS.r_target

        # When a validator mock checks the whole claim, every repeat fails
        await validator.http.post(f"{API}/pow/init/validate", content=validator.init_body())
        verdict = decode(await validator.http.post(
            f"{API}/pow/validate", content=msgspec.json.encode(claimed)), ValidatedBatch)
        assert (verdict.n_checked, verdict.n_duplicates, verdict.n_invalid) == (100, 25, 25)
        assert verdict.fraud_detected

        # A session that claims nothing but repeats still finds one nonce to repeat
        await generator.script(weight=10, weight_per_batch=10, poc_duplicates=1.0)
        await generator.http.post(f"{API}/pow/init/generate",
                                  content=generator.init_body(public_key=OTHER_KEY))
        await callbacks.wait_for(lambda: len(callbacks.nonces(OTHER_KEY)) >= 10)
        assert len(callbacks.nonces(OTHER_KEY)) == 10
        assert len(set(callbacks.nonces(OTHER_KEY))) == 1


# -- inference ----------------------------------------------------------------------------------

async def test_chat_completion_has_the_openai_shape_and_consistent_token_counts():
    async with running_mock() as (mock, _):
        await mock.up()
        # Without logprobs asked, there are none
        plain = await mock.chat(max_tokens=40)
        assert set(plain) == {"id", "object", "created", "model", "choices", "usage"}
        assert (plain["object"], plain["model"]) == ("chat.completion", MODEL)
        (choice,) = plain["choices"]
        assert set(choice) == {"index", "message", "logprobs", "finish_reason"}
        assert choice["logprobs"] is None and choice["message"]["role"] == "assistant"

        # With logprobs: one entry per completion token, top_logprobs as many as asked
        full = await mock.chat(max_tokens=40, logprobs=True, top_logprobs=3)
        content = full["choices"][0]["logprobs"]["content"]
        assert full["choices"][0]["message"] == choice["message"]      # deterministic
        assert "".join(e["token"] for e in content) == choice["message"]["content"]
        assert all(set(e) == {"token", "logprob", "bytes", "top_logprobs"} for e in content)
        assert all(len(e["top_logprobs"]) == 3 and e["top_logprobs"][0]["token"] == e["token"]
                   for e in content)
        tokenized = (await mock.http.post("/tokenize", json={"messages": MESSAGES})).json()
        usage = full["usage"]
        assert usage == {"prompt_tokens": tokenized["count"], "completion_tokens": len(content),
                         "total_tokens": tokenized["count"] + len(content)}
        assert full["id"] != plain["id"]

        # max_tokens below the natural length cuts the output
        short = await mock.chat(max_tokens=5)
        assert short["usage"]["completion_tokens"] == 5
        assert short["choices"][0]["finish_reason"] == "length"
        assert choice["message"]["content"].startswith(short["choices"][0]["message"]["content"])

        completion = (await mock.http.post("/v1/completions", json={
            "prompt": "hello", "max_tokens": 4, "logprobs": 2})).json()
        assert completion["object"] == "text_completion"
        assert completion["usage"] == {"prompt_tokens": 5, "completion_tokens": 4,
                                       "total_tokens": 9}
        assert "".join(completion["choices"][0]["logprobs"]["tokens"]) == \
            completion["choices"][0]["text"]

        models = (await mock.http.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == [MODEL]
        r = await mock.http.post("/v1/chat/completions",
                                 json={"messages": MESSAGES, "model": "other"})
        assert r.status_code == 404 and "other" in r.json()["error"]["message"]


async def test_streamed_chat_completion_carries_the_same_output_as_sse():
    async with running_mock() as (mock, _):
        await mock.up()
        whole = await mock.chat(logprobs=True, top_logprobs=2)
        async with mock.http.stream("POST", "/v1/chat/completions", json={
                "messages": MESSAGES, "stream": True, "logprobs": True, "top_logprobs": 2,
                "stream_options": {"include_usage": True}}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [line async for line in r.aiter_lines() if line]

    assert lines[-1] == "data: [DONE]"
    chunks = [msgspec.json.decode(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"]
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    with_choice = [c["choices"][0] for c in chunks if c["choices"]]
    text = "".join(c["delta"].get("content", "") for c in with_choice)
    logprobs = [e for c in with_choice if c["logprobs"] for e in c["logprobs"]["content"]]
    assert text == whole["choices"][0]["message"]["content"]
    assert logprobs == whole["choices"][0]["logprobs"]["content"]
    assert with_choice[-1]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


async def test_replay_passes_an_honest_output_and_fails_tampered_ones():
    ask = dict(logprobs=True, top_logprobs=5, return_tokens_as_token_ids=True)
    async with running_mock() as (mock, _):
        await mock.up()
        outputs = {"honest": await mock.chat(**ask)}
        for tamper in ("tokens", "logprobs"):
            await mock.script(tamper=tamper)
            outputs[tamper] = await mock.chat(**ask)
        await mock.script(tamper=None)

        # A token id the model does not have is the caller's error, as with vLLM
        r = await mock.http.post(f"{API}/inference/replay", json={
            "messages": MESSAGES, "output_token_ids": [999]})
        assert r.status_code == 400 and "999" in r.json()["error"]

        # When an honest mock replays each output as a validator would
        scores = {}
        for name, output in outputs.items():
            original = parse_chat_logprobs(output)
            r = await mock.http.post(f"{API}/inference/replay", json={
                "messages": MESSAGES, "model": MODEL, "top_k": 5,
                "output_token_ids": [p.token_id for p in original]})
            replayed = decode(r, ReplayResponse)
            assert replayed.prompt_tokens == output["usage"]["prompt_tokens"]
            scores[name] = score(original, replayed.positions)

    # Then only the honest one passes
    assert (scores["honest"].similarity, scores["honest"].reason) == (1.0, None)
    assert scores["tokens"].similarity == 0.0
    assert scores["tokens"].reason.startswith("different tokens at position 0")
    assert scores["logprobs"].reason is None and scores["logprobs"].similarity <= THRESHOLD


async def test_per_model_responses_tell_which_models_node_answered():
    responses = {MODEL: "Answer from llama.", "mock-qwen": "Qwen says: 42!"}
    script = MockScript(responses=responses)
    ask = dict(logprobs=True, top_logprobs=3, return_tokens_as_token_ids=True)
    async with running_mock(script) as (llama, _), running_mock(script) as (qwen, _), \
            running_mock() as (unscripted, _):
        # Given two nodes serving two models with the same script
        await llama.up(MODEL)
        await qwen.up("mock-qwen")
        await unscripted.up(MODEL)

        # When each is asked the same thing
        answers = {MODEL: await llama.chat(**ask), "mock-qwen": await qwen.chat(**ask)}

        # Then each answers its model's text, the same every time
        for model, answer in answers.items():
            assert answer["model"] == model
            assert answer["choices"][0]["message"]["content"] == responses[model]
            assert answer["choices"][0]["finish_reason"] == "stop"
            assert answer["usage"]["completion_tokens"] == len(responses[model])
        assert await llama.chat(**ask) | {"id": "", "created": 0} == \
            answers[MODEL] | {"id": "", "created": 0}
        # ... with the text's token the most likely at every position
        content = answers[MODEL]["choices"][0]["logprobs"]["content"]
        assert [e["token"] for e in content] == [f"token_id:{b}" for b in responses[MODEL].encode()]
        assert all(e["top_logprobs"][0]["token"] == e["token"] and
                   e["top_logprobs"][0]["logprob"] == e["logprob"] for e in content)
        # ... cut by max_tokens, streamed alike, and a node without the script answers otherwise
        short = await qwen.chat(max_tokens=4)
        assert (short["choices"][0]["message"]["content"],
                short["choices"][0]["finish_reason"]) == (responses["mock-qwen"][:4], "length")
        assert "".join(await stream_texts(qwen)) == responses["mock-qwen"]
        other = (await unscripted.chat())["choices"][0]["message"]["content"]
        assert other != responses[MODEL]

        # When a validator with the same script replays the output, it is honest; one without
        # the script computes another output
        output_ids = [p.token_id for p in parse_chat_logprobs(answers[MODEL])]
        scores = {}
        for name, validator in (("scripted", llama), ("unscripted", unscripted)):
            r = await validator.http.post(f"{API}/inference/replay", json={
                "messages": MESSAGES, "model": MODEL, "top_k": 3,
                "output_token_ids": output_ids})
            scores[name] = score(parse_chat_logprobs(answers[MODEL]),
                                 decode(r, ReplayResponse).positions)
        assert (scores["scripted"].similarity, scores["scripted"].reason) == (1.0, None)
        assert scores["unscripted"].reason is not None

        # When the script drops the model's entry at run time, the hash-defined text is back
        await llama.script(responses={})
        assert (await llama.chat())["choices"][0]["message"]["content"] == other


async def stream_lines(mock: Mock, **fields) -> tuple[list[str], Exception | None]:
    """The non-empty lines of a streamed chat completion, and the error that ended it, if any."""
    lines: list[str] = []
    try:
        async with mock.http.stream("POST", "/v1/chat/completions", json={
                "messages": MESSAGES, "stream": True, **fields}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line:
                    lines.append(line)
    except httpx.RemoteProtocolError as e:
        return lines, e
    return lines, None


async def stream_texts(mock: Mock) -> list[str]:
    lines, error = await stream_lines(mock)
    assert error is None and lines[-1] == "data: [DONE]"
    chunks = [msgspec.json.decode(line.removeprefix("data: ")) for line in lines[:-1]]
    return [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]


async def test_a_scripted_stream_cut_drops_the_connection_after_n_events_without_done():
    async with running_mock() as (mock, _):
        await mock.up()
        whole, error = await stream_lines(mock, logprobs=True)
        assert error is None and whole[-1] == "data: [DONE]" and len(whole) > 5

        # When the script cuts streams after 3 events
        await mock.script(stream_cut_after=3)
        cut, error = await stream_lines(mock, logprobs=True)

        # Then the client gets the first 3 (role chunk, two tokens), no [DONE], and a
        # connection closed before the end of the body
        assert isinstance(error, httpx.RemoteProtocolError)
        assert len(cut) == 3 and "data: [DONE]" not in cut
        strip = [msgspec.json.decode(line.removeprefix("data: ")) | {"id": "", "created": 0}
                 for line in (*cut, *whole[:3])]
        assert strip[:3] == strip[3:]
        # ... after 0 events, nothing at all
        await mock.script(stream_cut_after=0)
        lines, error = await stream_lines(mock)
        assert lines == [] and isinstance(error, httpx.RemoteProtocolError)
        # ... non-streamed answers are not cut, and unscripting brings [DONE] back
        assert (await mock.chat())["object"] == "chat.completion"
        await mock.script(stream_cut_after=None)
        assert (await stream_lines(mock))[0][-1] == "data: [DONE]"
        # ... and a stream that fits entirely is not cut
        await mock.script(stream_cut_after=len(whole))
        lines, error = await stream_lines(mock, logprobs=True)
        assert error is None and len(lines) == len(whole) and lines[-1] == "data: [DONE]"


# -- scripted faults ----------------------------------------------------------------------------

async def test_scripted_invalid_json_on_chosen_paths_until_reset():
    async with running_mock() as (mock, _):
        await mock.up()
        await mock.script(invalid_json_paths=["/v1/chat/"])
        r = await mock.http.post("/v1/chat/completions", json={"messages": MESSAGES})
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        assert (await mock.state()) == StateView("INFERENCE")    # other paths answer

        await mock.script(invalid_json_paths=[])
        assert (await mock.chat())["object"] == "chat.completion"


async def test_scripted_delay_holds_the_answer_on_chosen_paths():
    async with running_mock() as (mock, _):
        await mock.script(delay_s=600.0, delay_paths=[f"{API}/state"])
        with trio.move_on_after(0.2) as waited:
            await mock.http.get(f"{API}/state")
        assert waited.cancelled_caught
        assert decode(await mock.http.get(f"{API}/pow/status"), PowStatus)  # not delayed

        await mock.script(delay_s=0.0)
        assert await mock.state() == StateView("STOPPED")


async def test_a_disappeared_mock_answers_nothing_until_it_comes_back():
    async with running_mock() as (mock, _):
        await mock.script(disappeared=True)
        answers: list[httpx.Response] = []

        async def ask() -> None:
            answers.append(await mock.http.get(f"{API}/state"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            # When the request has arrived and is held
            while (await mock.http.get("/mock/stats")).json()["requests"].get(
                    f"{API}/state", 0) == 0:
                await trio.sleep(0.005)
            assert (await mock.http.get("/mock/script")).status_code == 200
            assert answers == []
            # Then coming back answers it
            await mock.script(disappeared=False)
        assert answers[0].json() == {"state": "STOPPED"}


async def test_scripted_start_failure_and_crash_are_recorded_like_the_real_nodes():
    async with running_mock(MockScript(inference_start_failure="CUDA out of memory")) as (
            mock, _):
        r = await mock.http.post(f"{API}/inference/up", json={"model": MODEL})
        assert r.status_code == 500 and "CUDA out of memory" in r.json()["error"]
        state = await mock.state()
        assert state.state == "STOPPED" and "CUDA out of memory" in state.failure

        # When it starts and then crashes, the watchdog records it
        await mock.script(inference_start_failure=None)
        await mock.up()
        await mock.script(inference_crash=True)
        while (state := await mock.state()).state != "STOPPED":
            await trio.sleep(0.005)
        assert "crashed" in state.failure


async def test_a_bad_script_is_400_and_changes_nothing():
    async with running_mock(MockScript(weight=7)) as (mock, _):
        for bad in ({"bogus": 1}, {"poc_fraud": 2.0}, {"weight": None},
                    {"poc_duplicates": -0.1}, {"poc_fraud": 0.6, "poc_duplicates": 0.5},
                    {"stream_cut_after": -1}, {"stream_cut_after": 1.5},
                    {"responses": ["text"]}, {"responses": {MODEL: ""}},
                    {"responses": {"": "text"}}, {"responses": {MODEL: "na\u00efve"}}):
            r = await mock.http.post("/mock/script", json=bad)
            assert r.status_code == 400 and "MockScript" in r.json()["error"]
        assert decode(await mock.http.get("/mock/script"), MockScript) == MockScript(weight=7)
        # PUT replaces: absent fields take their defaults
        r = await mock.http.put("/mock/script", json={"delay_s": 0.5})
        assert decode(r, MockScript) == MockScript(delay_s=0.5)


async def test_runs_as_a_process_with_a_script_file(tmp_path):
    script = tmp_path / "script.json"
    script.write_bytes(msgspec.json.encode(MockScript(weight=3, poc_fraud=0.5)))
    async with trio.open_nursery() as nursery:
        proc = await nursery.start(functools.partial(
            trio.run_process, [sys.executable, "-m", "testermint_py.mock_mlnode", "--port", "0",
                               "--script", str(script)],
            stdout=-1, check=False))
        line = b""
        while not line.endswith(b"\n"):
            line += await proc.stdout.receive_some(1)
        url = line.decode().split()[-1]
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get(f"{API}/state")).json() == {"state": "STOPPED"}
            got = decode(await client.get("/mock/script"), MockScript)
            assert (got.weight, got.poc_fraud) == (3, 0.5)
        proc.terminate()
