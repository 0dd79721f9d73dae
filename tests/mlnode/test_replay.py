"""Replay request/response handling (mlnode.inference.replay) against canned vLLM answers."""

from __future__ import annotations

import json

import httpx
import msgspec
import pytest

from mlnode.inference.replay import (
    ChatMessage,
    PositionLogprobs,
    ReplayError,
    ReplayRequest,
    TokenLogprob,
    parse_chat_logprobs,
    replay,
)

# Shapes as vLLM 0.32 returns them (trimmed): chat logprobs with return_tokens_as_token_ids,
CHAT_RESPONSE = {
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": " of"},
            "logprobs": {
                "content": [
                    {
                        "token": "token_id:311",
                        "logprob": -4.96,
                        "bytes": [32, 111, 102],
                        "top_logprobs": [
                            {"token": "token_id:311", "logprob": -4.96, "bytes": []},
                            {"token": "token_id:159", "logprob": -5.01, "bytes": []},
                        ],
                    },
                    {
                        "token": "token_id:7",
                        "logprob": -6.5,
                        "bytes": [],
                        "top_logprobs": [
                            {"token": "token_id:2", "logprob": -4.1, "bytes": []},
                            {"token": "token_id:7", "logprob": -6.5, "bytes": []},
                        ],
                    },
                ]
            },
        }
    ]
}


def _prompt_logprobs_entry(actual: int, actual_lp: float, actual_rank: int, top: list) -> dict:
    """vLLM's prompt_logprobs entry: the top-k by rank plus the actual token."""
    entry = {str(t): {"logprob": lp, "rank": r, "decoded_token": "x"} for t, lp, r in top}
    entry[str(actual)] = {"logprob": actual_lp, "rank": actual_rank, "decoded_token": "y"}
    return entry


def test_chat_logprobs_become_positions():
    positions = parse_chat_logprobs(json.dumps(CHAT_RESPONSE).encode())
    assert positions == [
        PositionLogprobs(311, -4.96, [TokenLogprob(311, -4.96), TokenLogprob(159, -5.01)]),
        PositionLogprobs(7, -6.5, [TokenLogprob(2, -4.1), TokenLogprob(7, -6.5)]),
    ]


def test_chat_logprobs_need_token_ids():
    body = json.loads(json.dumps(CHAT_RESPONSE))
    body["choices"][0]["logprobs"]["content"][0]["token"] = " of"
    with pytest.raises(ValueError, match="return_tokens_as_token_ids"):
        parse_chat_logprobs(body)
    body["choices"][0]["logprobs"] = None
    with pytest.raises(ValueError, match="no logprobs"):
        parse_chat_logprobs(body)


@pytest.mark.parametrize(
    "body",
    [
        {"output_token_ids": [1]},  # no prompt
        {"output_token_ids": [1], "prompt_token_ids": [1], "messages": []},  # both
        {"output_token_ids": [1], "prompt_token_ids": []},
        {"output_token_ids": [-1], "prompt_token_ids": [1]},
        {"output_token_ids": [1], "prompt_token_ids": [1], "top_k": 21},
        {"output_token_ids": [1], "prompt_token_ids": [1], "extra": 1},
    ],
)
def test_invalid_replay_requests_do_not_decode(body):
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps(body), type=ReplayRequest)


class FakeVllm:
    """httpx transport answering /tokenize and /v1/completions like vLLM; records requests."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.path, body))
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "bad token id"}})
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"count": 3, "tokens": [0, 4, 9]})
        prompt = body["prompt"]
        prompt_logprobs = [None] + [
            _prompt_logprobs_entry(tid, -2.0 - i, 30 + i, [(100, -0.5, 1), (101, -1.5, 2)])
            for i, tid in enumerate(prompt[1:])
        ]
        # Make the second output token rank 1 itself (then vLLM lists it once).
        prompt_logprobs[-1] = {
            "101": {"logprob": -0.2, "rank": 1, "decoded_token": "a"},
            "100": {"logprob": -1.9, "rank": 2, "decoded_token": "b"},
        }
        return httpx.Response(200, json={"choices": [{"prompt_logprobs": prompt_logprobs}]})


async def test_replay_teacher_forces_output_after_the_chat_prompt():
    fake = FakeVllm()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        response = await replay(
            client,
            "http://vllm",
            ReplayRequest(
                model="tiny",
                messages=[ChatMessage("user", "hi")],
                output_token_ids=[55, 101],
                top_k=2,
            ),
        )
    (tok_path, tok_body), (path, body) = fake.requests
    assert tok_path == "/tokenize"
    assert tok_body == {
        "messages": [{"role": "user", "content": "hi"}],
        "add_generation_prompt": True,
        "model": "tiny",
    }
    assert path == "/v1/completions"
    assert body["prompt"] == [0, 4, 9, 55, 101]
    assert (body["max_tokens"], body["prompt_logprobs"], body["model"]) == (1, 2, "tiny")
    assert response.prompt_tokens == 3
    assert response.positions == [
        PositionLogprobs(55, -4.0, [TokenLogprob(100, -0.5), TokenLogprob(101, -1.5)]),
        PositionLogprobs(101, -0.2, [TokenLogprob(101, -0.2), TokenLogprob(100, -1.9)]),
    ]


async def test_replay_of_nothing_asks_nothing():
    fake = FakeVllm()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        response = await replay(
            client, "http://vllm", ReplayRequest(prompt_token_ids=[1, 2], output_token_ids=[])
        )
    assert response.positions == [] and fake.requests == []


async def test_vllm_rejecting_the_request_is_a_400_replay_error():
    async with httpx.AsyncClient(transport=httpx.MockTransport(FakeVllm(400))) as client:
        with pytest.raises(ReplayError) as excinfo:
            await replay(
                client, "http://vllm", ReplayRequest(prompt_token_ids=[1], output_token_ids=[9])
            )
    assert excinfo.value.status == 400
    assert "bad token id" in excinfo.value.message


async def test_vllm_unreachable_is_a_502_replay_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ReplayError) as excinfo:
            await replay(
                client, "http://vllm", ReplayRequest(prompt_token_ids=[1], output_token_ids=[9])
            )
    assert excinfo.value.status == 502
