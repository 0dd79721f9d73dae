"""OpenAI-compatible wire types the mock's inference backend reads and writes (the subset vLLM
serves: chat completions, completions, models, tokenize). Types only.

Requests ignore unknown fields (OpenAI clients send many the mock has no use for); responses are
the OpenAI shapes exactly: `logprobs` is null unless asked, `usage` always present on complete
answers and, when streaming, in a last chunk if `stream_options.include_usage`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

TopLogprobs = Annotated[int, Meta(ge=0, le=20)]
MaxTokens = Annotated[int, Meta(ge=1, le=1 << 20)]


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None


class ChatMessageIn(msgspec.Struct):
    role: Annotated[str, Meta(min_length=1)]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatCompletionRequest(msgspec.Struct):
    messages: Annotated[list[ChatMessageIn], Meta(min_length=1)]
    model: str | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: TopLogprobs | None = None
    n: Annotated[int, Meta(ge=1, le=1)] = 1
    # vLLM's extension: "token" fields read "token_id:N".
    return_tokens_as_token_ids: bool = False


class CompletionRequest(msgspec.Struct):
    prompt: str | list[int]
    model: str | None = None
    max_tokens: MaxTokens | None = 16
    stream: bool = False
    logprobs: TopLogprobs | None = None
    return_tokens_as_token_ids: bool = False


class TokenizeRequest(msgspec.Struct):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessageIn] | None = None
    add_generation_prompt: bool = True


class DetokenizeRequest(msgspec.Struct):
    tokens: list[Annotated[int, Meta(ge=0)]]
    model: str | None = None


# -- responses ----------------------------------------------------------------------------------

class TopLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(msgspec.Struct):
    content: list[TokenLogprobOut] | None


class AssistantMessage(msgspec.Struct):
    role: str
    content: str


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None
    finish_reason: str


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    logprobs: ChoiceLogprobs | None
    finish_reason: str | None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(msgspec.Struct):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: str


class Completion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str
    root: str
    max_model_len: int


class ModelList(msgspec.Struct):
    object: str
    data: list[ModelCard]


class TokenizeResponse(msgspec.Struct):
    count: int
    max_model_len: int
    tokens: list[int]


class DetokenizeResponse(msgspec.Struct):
    prompt: str


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: int


class OpenAiError(msgspec.Struct):
    error: ErrorBody
