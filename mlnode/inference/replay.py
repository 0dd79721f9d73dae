"""Teacher-forced replay of an executor's output through our own vLLM, for validation.

Upstream Gonka replays with a patched vLLM ("enforced tokens"). We use stock vLLM instead: the
prompt ids followed by the executor's output ids go to /v1/completions as ONE prompt with
`prompt_logprobs=k` and `max_tokens=1`; vLLM then reports, for every prompt position, the logprob
of the token that is there and the top-k alternatives. The positions of the output tokens are
exactly what the executor's sampler saw, so they compare with the executor's reported logprobs
(chain/types/inference_scoring.py). Chat messages are tokenized through vLLM's /tokenize with
the model's chat template and the generation prompt, as /v1/chat/completions does.

Both sides report raw logprobs (vLLM's default `--logprobs-mode raw_logprobs`: before
temperature, penalties and top-k/top-p), so the replay needs no sampling parameters. Token ids,
not text, are replayed: text would be re-tokenized and could legitimately differ.

This module does HTTP only through the client it is given; the comparison lives in
chain/types/inference_scoring.py (shared with the API node's validation worker).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import msgspec

from chain.types.inference_scoring import PositionLogprobs, TokenLogprob

MAX_TOP_K = 20  # vLLM's default --max-logprobs
TOKEN_ID_PREFIX = "token_id:"  # what return_tokens_as_token_ids puts in "token" fields

__all__ = [
    "ChatMessage",
    "PositionLogprobs",
    "ReplayError",
    "ReplayRequest",
    "ReplayResponse",
    "TokenLogprob",
    "parse_chat_logprobs",
    "replay",
]


class ReplayError(Exception):
    """The replay could not be done (bad request for this model, or vLLM failed)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ChatMessage(msgspec.Struct, omit_defaults=True):
    role: str
    content: str


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The prompt (as token ids, or as chat messages) and the output token ids to replay."""

    output_token_ids: list[Annotated[int, msgspec.Meta(ge=0)]]
    model: str | None = None
    prompt_token_ids: list[Annotated[int, msgspec.Meta(ge=0)]] | None = None
    messages: list[ChatMessage] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOP_K)] = 5

    def __post_init__(self) -> None:
        if (self.prompt_token_ids is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt_token_ids and messages")
        if self.prompt_token_ids is not None and not self.prompt_token_ids:
            raise ValueError("prompt_token_ids must not be empty")


class ReplayResponse(msgspec.Struct):
    """For each output position: the given token's logprob and the top-k alternatives."""

    positions: list[PositionLogprobs]
    prompt_tokens: int = 0


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise ValueError(
            f"token {token!r} is not {TOKEN_ID_PREFIX}N; request with "
            '"return_tokens_as_token_ids": true'
        )
    return int(token[len(TOKEN_ID_PREFIX) :])


def parse_chat_logprobs(
    response: dict[str, Any] | bytes, choice: int = 0
) -> list[PositionLogprobs]:
    """Per-position logprobs of an OpenAI chat completion from vLLM.

    The request must have had `logprobs: true`, `top_logprobs: k` and
    `return_tokens_as_token_ids: true` (tokens then read "token_id:N"). The output token ids are
    `[p.token_id for p in positions]`.
    """
    body = msgspec.json.decode(response) if isinstance(response, bytes) else response
    logprobs = body["choices"][choice].get("logprobs")
    if not logprobs or logprobs.get("content") is None:
        raise ValueError("the response carries no logprobs (request with logprobs: true)")
    positions = []
    for entry in logprobs["content"]:
        top = [
            TokenLogprob(_token_id(t["token"]), float(t["logprob"]))
            for t in entry.get("top_logprobs") or ()
        ]
        positions.append(PositionLogprobs(_token_id(entry["token"]), float(entry["logprob"]), top))
    return positions


def _positions_from_prompt_logprobs(
    prompt_logprobs: list[dict[str, Any] | None], token_ids: list[int], start: int, k: int
) -> list[PositionLogprobs]:
    if len(prompt_logprobs) != len(token_ids):
        raise ReplayError(
            f"vLLM returned {len(prompt_logprobs)} prompt logprobs for {len(token_ids)} tokens"
        )
    positions = []
    for index in range(start, len(token_ids)):
        entry = prompt_logprobs[index]
        token_id = token_ids[index]
        if entry is None:
            raise ReplayError(f"no prompt logprobs at position {index}")
        # {"<id>": {"logprob": x, "rank": r, "decoded_token": s}}: the top-k by rank, plus the
        # token actually at this position when it is not among them.
        candidates = sorted(
            ((v.get("rank") or 0, int(tid), float(v["logprob"])) for tid, v in entry.items()),
        )
        actual = entry.get(str(token_id))
        if actual is None:
            raise ReplayError(f"vLLM left out the logprob of token {token_id} at {index}")
        top = [TokenLogprob(tid, lp) for rank, tid, lp in candidates if 1 <= rank <= k]
        positions.append(PositionLogprobs(token_id, float(actual["logprob"]), top[:k]))
    return positions


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = await client.post(
            url, content=msgspec.json.encode(body), headers={"content-type": "application/json"}
        )
    except httpx.HTTPError as exc:
        raise ReplayError(f"vLLM unreachable at {url}: {exc!r}", 502) from exc
    if response.status_code != 200:
        # vLLM answers 400 for requests this model cannot take (unknown ids, too long, ...).
        status = 400 if response.status_code in (400, 404, 422) else 502
        raise ReplayError(f"vLLM {url} answered {response.status_code}: {response.text}", status)
    return msgspec.json.decode(response.content)


async def tokenize_chat(
    client: httpx.AsyncClient, base_url: str, messages: list[ChatMessage], model: str | None
) -> list[int]:
    """Prompt ids for chat messages, exactly as /v1/chat/completions builds them."""
    body: dict[str, Any] = {
        "messages": msgspec.to_builtins(messages),
        "add_generation_prompt": True,
    }
    if model:
        body["model"] = model
    result = await _post(client, f"{base_url}/tokenize", body)
    return list(result["tokens"])


async def replay(
    client: httpx.AsyncClient, base_url: str, request: ReplayRequest
) -> ReplayResponse:
    """Teacher-force `request.output_token_ids` after the prompt; logprobs of each output token."""
    if request.messages is not None:
        prompt_ids = await tokenize_chat(client, base_url, request.messages, request.model)
    else:
        prompt_ids = list(request.prompt_token_ids or ())
    if not prompt_ids:
        raise ReplayError("the prompt is empty", 400)
    if not request.output_token_ids:
        return ReplayResponse(positions=[], prompt_tokens=len(prompt_ids))
    token_ids = prompt_ids + list(request.output_token_ids)
    body: dict[str, Any] = {
        "prompt": token_ids,
        "max_tokens": 1,
        "temperature": 0.0,
        "prompt_logprobs": request.top_k,
        "add_special_tokens": False,
    }
    if request.model:
        body["model"] = request.model
    result = await _post(client, f"{base_url}/v1/completions", body)
    prompt_logprobs = result["choices"][0].get("prompt_logprobs")
    if prompt_logprobs is None:
        raise ReplayError("vLLM returned no prompt_logprobs")
    positions = _positions_from_prompt_logprobs(
        prompt_logprobs, token_ids, len(prompt_ids), request.top_k
    )
    return ReplayResponse(positions=positions, prompt_tokens=len(prompt_ids))
