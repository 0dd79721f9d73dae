"""Real vLLM (CPU build) serving a tiny local Llama: inference through the proxy, then replay of
its own output for validation (scored ~1.0) and of a tampered output (a failure).

Installs what it needs: scripts/vllm_env.sh builds .venv-vllm when it is missing (minutes, once).
One vLLM start serves the whole scenario; start-up is tens of seconds to a few minutes on 2 cores.
"""

from __future__ import annotations

import json
from functools import partial

import httpx
import hypercorn.config
import hypercorn.trio
import pytest
from quart import request
from quart_trio import QuartTrio

from chain.types.inference_scoring import score
from mlnode.inference.proxy import forward
from mlnode.inference.replay import (
    ChatMessage,
    ReplayError,
    ReplayRequest,
    parse_chat_logprobs,
    replay,
)
from mlnode.inference.vllm_server import InferenceError, InferenceManager
from testermint_py.cluster import free_ports
from tests.mlnode.conftest import CPU_ARGS

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello, world! Tell me a short story."},
]



def _chat_body(**extra) -> dict:
    return {
        "model": "tiny",
        "messages": MESSAGES,
        "temperature": 0.0,
        "max_tokens": 16,
        "logprobs": True,
        "top_logprobs": 5,
        "return_tokens_as_token_ids": True,
        "ignore_eos": True,  # a random model may pick EOS at once; we want 16 positions
        **extra,
    }


async def test_inference_then_replay_validates_own_output_and_rejects_tampering(
    nursery, vllm_python_path, tiny_model_dir, tmp_path
):
    manager = InferenceManager(
        nursery, python=vllm_python_path, port=free_ports(1)[0], log_dir=tmp_path / "logs",
        start_timeout_s=1200,
    )  # fmt: skip
    app = QuartTrio(__name__)

    @app.route("/v1/<path:rest>", methods=["GET", "POST"])
    async def v1(rest: str):
        return await forward(manager, request, "/v1/" + rest)

    @app.route("/tokenize", methods=["POST"])
    async def tokenize():
        return await forward(manager, request, "/tokenize")

    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{free_ports(1)[0]}"]
    config.accesslog = config.errorlog = None
    proxy = (await nursery.start(partial(hypercorn.trio.serve, app, config)))[0]

    try:
        await manager.up(
            str(tiny_model_dir), dtype="float32", additional_args=CPU_ARGS, served_model_name="tiny"
        )
        assert manager.is_ready() and manager.model == "tiny"

        async with httpx.AsyncClient(timeout=600) as client:
            # Given an inference served through the proxy, with logprobs as token ids,
            response = await client.post(f"{proxy}/v1/chat/completions", json=_chat_body())
            assert response.status_code == 200, response.text
            original = parse_chat_logprobs(response.content)
            output_ids = [p.token_id for p in original]
            assert len(output_ids) == 16
            assert all(len(p.top) == 5 for p in original)

            # (the same request streamed through the proxy arrives as SSE events)
            async with client.stream(
                "POST", f"{proxy}/v1/chat/completions", json=_chat_body(stream=True)
            ) as streamed:
                assert streamed.headers["content-type"].startswith("text/event-stream")
                events = [line async for line in streamed.aiter_lines() if line]
            assert events[-1] == "data: [DONE]"
            streamed_ids = [
                int(entry["token"].removeprefix("token_id:"))
                for event in events[:-1]
                for choice in json.loads(event.removeprefix("data: "))["choices"]
                for entry in (choice.get("logprobs") or {}).get("content") or ()
            ]
            assert streamed_ids == output_ids

            # when the validator replays the same tokens on the same model,
            messages = [ChatMessage(**m) for m in MESSAGES]
            replayed = await replay(
                manager.client, manager.base_url,
                ReplayRequest(model="tiny", messages=messages, output_token_ids=output_ids),
            )  # fmt: skip
            # then it matches.
            result = score(original, replayed.positions)
            assert result.reason is None
            assert result.similarity >= 0.99
            assert [p.token_id for p in replayed.positions] == output_ids

            # Prompt ids (as vLLM's /tokenize gives them) replay the same way.
            tokens = await client.post(
                f"{proxy}/tokenize",
                json={"model": "tiny", "messages": MESSAGES, "add_generation_prompt": True},
            )
            prompt_ids = tokens.json()["tokens"]
            by_ids = await replay(
                manager.client, manager.base_url,
                ReplayRequest(prompt_token_ids=prompt_ids, output_token_ids=output_ids),
            )  # fmt: skip
            assert by_ids.prompt_tokens == replayed.prompt_tokens == len(prompt_ids)
            assert score(original, by_ids.positions).similarity >= 0.99

            # A tampered output (one token changed) fails, and the replay really conditions on
            # the given tokens: the positions after the change see different logprobs.
            changed = list(output_ids)
            changed[5] = (changed[5] + 1) % 512
            tampered = await replay(
                manager.client, manager.base_url,
                ReplayRequest(messages=messages, output_token_ids=changed),
            )  # fmt: skip
            failed = score(original, tampered.positions)
            assert failed.similarity == 0.0
            assert failed.reason is not None and "position 5" in failed.reason
            assert [p.top for p in tampered.positions[6:]] != [p.top for p in original[6:]]

            # A token id outside the vocabulary is the caller's error.
            with pytest.raises(ReplayError) as excinfo:
                await replay(
                    manager.client,
                    manager.base_url,
                    ReplayRequest(prompt_token_ids=prompt_ids, output_token_ids=[10**6]),
                )
            assert excinfo.value.status == 400

        await manager.down()
        assert not manager.is_running()
        assert manager.exit_info is None
    finally:
        await manager.aclose()


async def test_model_that_is_not_there_fails_offline_with_the_log(
    nursery, vllm_python_path, tmp_path
):
    manager = InferenceManager(
        nursery, python=vllm_python_path, port=free_ports(1)[0], log_dir=tmp_path / "logs",
        start_timeout_s=600,
    )  # fmt: skip
    try:
        with pytest.raises(InferenceError) as excinfo:
            await manager.up("no-such-org/no-such-model", additional_args=CPU_ARGS)
        assert "exited with code" in excinfo.value.message
        # HF_HUB_OFFLINE: vLLM looked in the local cache only, and said so.
        assert "LocalEntryNotFoundError" in excinfo.value.message
        assert not manager.is_running()
    finally:
        await manager.aclose()
