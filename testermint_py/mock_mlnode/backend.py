"""The mock's inference backend: the `InferenceBackend` the real ML node service drives, with the
mock language model (`lm`) in place of a vLLM subprocess.

It serves what the real node proxies to vLLM (/v1/chat/completions streaming and not,
/v1/completions, /v1/models, /tokenize, /detokenize, /health) and the replay behind
POST /api/v1/inference/replay (the real `ReplayRequest` -> `ReplayResponse`). Start failures,
start delays, crashes, tampered outputs, per-model responses, per-token delays and cut streams
follow the current script.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import trio
from quart import Request, Response

from mlnode.inference.replay import (
    TOKEN_ID_PREFIX,
    ReplayError,
    ReplayRequest,
    ReplayResponse,
)
from testermint_py.mock_mlnode import lm
from testermint_py.mock_mlnode.openai_types import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageIn,
    ChoiceLogprobs,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    Delta,
    DetokenizeRequest,
    DetokenizeResponse,
    ErrorBody,
    ModelCard,
    ModelList,
    OpenAiError,
    TokenizeRequest,
    TokenizeResponse,
    TokenLogprobOut,
    TopLogprob,
    Usage,
)
from testermint_py.mock_mlnode.state import ScriptHolder

MAX_MODEL_LEN = 4096


class StreamCut(Exception):
    """Raised inside a streamed body to drop the connection mid-stream (`stream_cut_after`):
    Hypercorn then closes it without ending the chunked body. The server keeps it out of its
    error log."""


class OpenAiHttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def _json(obj: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status=status, content_type="application/json")


def _error(e: OpenAiHttpError) -> Response:
    return _json(OpenAiError(ErrorBody(e.message, e.kind, None, e.status)), e.status)


def _decode(body: bytes, type_: type) -> Any:
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise OpenAiHttpError(400, f"invalid request: {e}") from None


def check_ids(ids: list[int], what: str) -> list[int]:
    """Token ids of this vocabulary, or a 400 (vLLM refuses unknown ids too)."""
    bad = next((i for i in ids if not 0 <= i < lm.VOCAB_SIZE), None)
    if bad is not None:
        raise OpenAiHttpError(400, f"{what}: token id {bad} is outside the vocabulary "
                                   f"(0..{lm.VOCAB_SIZE - 1})")
    return ids


def chat_prompt_ids(messages: list[ChatMessageIn], add_generation_prompt: bool = True
                    ) -> list[int]:
    return lm.tokenize(lm.render_chat([(m.role, m.text()) for m in messages],
                                      add_generation_prompt))


def _token(token_id: int, as_ids: bool) -> str:
    return f"{TOKEN_ID_PREFIX}{token_id}" if as_ids else lm.token_text(token_id)


def _logprob_entry(step: lm.Step, k: int, as_ids: bool) -> TokenLogprobOut:
    return TokenLogprobOut(
        token=_token(step.token_id, as_ids), logprob=step.logprob, bytes=[step.token_id],
        top_logprobs=[TopLogprob(_token(t, as_ids), lp, [t]) for t, lp in step.top[:k]])


class MockBackend:
    """`mlnode.service.inference.InferenceBackend` over the mock language model."""

    replay_request_type = ReplayRequest

    def __init__(self, script: ScriptHolder) -> None:
        self._script = script
        self._running = False
        self.model: lm.MockLM | None = None
        self.served_name: str | None = None
        self._ids = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------------

    async def up(self, model: str, dtype: str, additional_args: list[str],
                 served_model_name: str | None) -> None:
        script = self._script.current
        await trio.sleep(script.inference_start_delay_s)
        if script.inference_start_failure is not None:
            raise RuntimeError(script.inference_start_failure)
        self.served_name = served_model_name or model
        self.model = lm.MockLM(self.served_name)
        self._running = True

    async def down(self) -> None:
        self._running = False
        self.model = self.served_name = None

    async def aclose(self) -> None:
        await self.down()

    def is_running(self) -> bool:
        return self._running and not self._script.current.inference_crash

    async def healthy(self) -> bool:
        return self.is_running()

    def describe_exit(self) -> str:
        return "the mock backend crashed (scripted inference_crash)"

    # -- replay ---------------------------------------------------------------------------------

    async def replay(self, request: ReplayRequest) -> ReplayResponse:
        model = self._model_for(request.model)
        if request.messages is not None:
            prompt = lm.tokenize(lm.render_chat([(m.role, m.content) for m in request.messages]))
        else:
            prompt = check_ids(list(request.prompt_token_ids or ()), "prompt_token_ids")
        if not prompt:
            raise ReplayError("the prompt is empty", 400)
        output = check_ids(list(request.output_token_ids), "output_token_ids")
        positions = model.replay(prompt, output, request.top_k)
        return ReplayResponse(positions=positions, prompt_tokens=len(prompt))

    def _model_for(self, name: str | None) -> lm.MockLM:
        if self.model is None:
            raise OpenAiHttpError(503, "no model is served", "ServiceUnavailableError")
        if name is not None and name != self.served_name:
            raise OpenAiHttpError(404, f"The model `{name}` does not exist.", "NotFoundError")
        fixed = self._script.current.responses.get(self.model.name)
        return self.model if fixed is None else dataclasses.replace(self.model, fixed=fixed)

    # -- the OpenAI routes ----------------------------------------------------------------------

    async def forward(self, request: Request, path: str) -> Response:
        try:
            if path == "/health":
                return Response(b"", status=200)
            if path == "/v1/models":
                return self._models()
            body = await request.get_data(as_text=False)
            if path == "/v1/chat/completions":
                return await self._chat(_decode(body, ChatCompletionRequest))
            if path == "/v1/completions":
                return self._completion(_decode(body, CompletionRequest))
            if path == "/tokenize":
                return self._tokenize(_decode(body, TokenizeRequest))
            if path == "/detokenize":
                req = _decode(body, DetokenizeRequest)
                self._model_for(req.model)
                return _json(DetokenizeResponse(lm.detokenize(check_ids(req.tokens, "tokens"))))
            raise OpenAiHttpError(404, f"no route {path}", "NotFoundError")
        except OpenAiHttpError as e:
            return _error(e)

    def _models(self) -> Response:
        model = self._model_for(None)
        return _json(ModelList("list", [ModelCard(model.name, "model", int(time.time()),
                                                  "gonka-mock", model.name, MAX_MODEL_LEN)]))

    def _tokenize(self, req: TokenizeRequest) -> Response:
        self._model_for(req.model)
        if (req.prompt is None) == (req.messages is None):
            raise OpenAiHttpError(400, "give exactly one of prompt and messages")
        if req.messages is not None:
            ids = chat_prompt_ids(req.messages, req.add_generation_prompt)
        else:
            ids = lm.tokenize(req.prompt or "")
        return _json(TokenizeResponse(len(ids), MAX_MODEL_LEN, ids))

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-mock{next(self._ids):08d}"

    async def _chat(self, req: ChatCompletionRequest) -> Response:
        model = self._model_for(req.model)
        prompt = chat_prompt_ids(req.messages)
        generation = model.generate(prompt, req.max_completion_tokens or req.max_tokens,
                                    self._script.current.tamper)
        k = req.top_logprobs or 0
        entries = ([_logprob_entry(s, k, req.return_tokens_as_token_ids)
                    for s in generation.steps] if req.logprobs else None)
        usage = Usage(len(prompt), len(generation.steps), len(prompt) + len(generation.steps))
        ident, created = self._next_id("chatcmpl"), int(time.time())
        if not req.stream:
            choice = ChatChoice(0, AssistantMessage("assistant", generation.text),
                                None if entries is None else ChoiceLogprobs(entries),
                                generation.finish_reason)
            return _json(ChatCompletion(ident, "chat.completion", created, model.name, [choice],
                                        usage))
        include_usage = req.stream_options is not None and req.stream_options.include_usage
        cut_after = self._script.current.stream_cut_after

        def chunk(delta: Delta, logprobs: ChoiceLogprobs | None,
                  finish: str | None) -> bytes:
            body = ChatCompletionChunk(ident, "chat.completion.chunk", created, model.name,
                                       [ChunkChoice(0, delta, logprobs, finish)])
            return b"data: " + msgspec.json.encode(body) + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            yield chunk(Delta(role="assistant", content=""), None, None)
            for i, step in enumerate(generation.steps):
                await trio.sleep(self._script.current.token_delay_s)
                yield chunk(Delta(content=lm.token_text(step.token_id)),
                            None if entries is None else ChoiceLogprobs([entries[i]]), None)
            yield chunk(Delta(), None, generation.finish_reason)
            if include_usage:
                last = ChatCompletionChunk(ident, "chat.completion.chunk", created, model.name,
                                           [], usage)
                yield b"data: " + msgspec.json.encode(last) + b"\n\n"
            yield b"data: [DONE]\n\n"

        async def cut(after: int) -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events()) as stream:
                sent = 0
                async for event in stream:
                    if sent == after:
                        raise StreamCut(f"scripted stream cut after {after} events")
                    yield event
                    sent += 1

        body = events() if cut_after is None else cut(cut_after)
        response = Response(body, status=200, content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.timeout = None
        return response

    def _completion(self, req: CompletionRequest) -> Response:
        if req.stream:
            raise OpenAiHttpError(400, "the mock serves /v1/completions without streaming only")
        model = self._model_for(req.model)
        prompt = (lm.tokenize(req.prompt) if isinstance(req.prompt, str)
                  else check_ids(list(req.prompt), "prompt"))
        if not prompt:
            raise OpenAiHttpError(400, "the prompt is empty")
        generation = model.generate(prompt, req.max_tokens, self._script.current.tamper)
        logprobs = None
        if req.logprobs is not None:
            as_ids = req.return_tokens_as_token_ids
            tokens = [_token(s.token_id, as_ids) for s in generation.steps]
            offsets = list(itertools.accumulate((len(lm.token_text(s.token_id))
                                                 for s in generation.steps), initial=0))[:-1]
            logprobs = CompletionLogprobs(
                tokens, [s.logprob for s in generation.steps],
                [{_token(t, as_ids): lp for t, lp in s.top[:req.logprobs]}
                 for s in generation.steps], offsets)
        n = len(generation.steps)
        return _json(Completion(
            self._next_id("cmpl"), "text_completion", int(time.time()), model.name,
            [CompletionChoice(0, generation.text, logprobs, generation.finish_reason)],
            Usage(len(prompt), n, len(prompt) + n)))
