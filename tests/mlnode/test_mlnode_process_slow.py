"""`gonka mlnode start` as a process, on this CPU machine: inference through real vLLM with a tiny
local model, replay of its own output, the 409 while serving inference, then PoC generation and
validation after a stop. Only the public HTTP interface is used."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import msgspec
import pytest
import trio

from chain.types.poc import TEST_PARAMS
from testermint_py.cluster import free_ports
from tests.mlnode.conftest import CPU_ARGS

pytestmark = pytest.mark.slow

PUBLIC_KEY = "02" + "ab" * 32
BLOCK_HASH = "cd" * 32



async def wait_until_serving(client: httpx.AsyncClient, proc: subprocess.Popen) -> None:
    while True:
        assert proc.poll() is None, "the ML node exited"
        try:
            if (await client.get("/api/v1/state")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await trio.sleep(0.2)


async def test_mlnode_process_serves_inference_then_poc(vllm_python_path, tiny_model_dir,
                                                        tmp_path):
    port = free_ports(1)[0]
    env = {**os.environ, "GONKA_VLLM_PYTHON": vllm_python_path}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "mlnode", "start", "--port", str(port),
         "--vllm-port", str(free_ports(1)[0]), "--log-dir", str(tmp_path / "logs"),
         "--poc-backend", "cpu", "--send-interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as c:
            await wait_until_serving(c, proc)
            up = await c.post("/api/v1/inference/up", json={
                "model": str(tiny_model_dir), "dtype": "float32",
                "served_model_name": "tiny", "additional_args": CPU_ARGS})
            assert up.status_code == 200, up.text
            assert (await c.get("/api/v1/state")).json()["state"] == "INFERENCE"

            messages = [{"role": "user", "content": "Tell me a story."}]
            chat = await c.post("/v1/chat/completions", json={
                "model": "tiny", "messages": messages, "temperature": 0.0, "max_tokens": 8,
                "logprobs": True, "top_logprobs": 5, "ignore_eos": True,
                "return_tokens_as_token_ids": True})
            assert chat.status_code == 200, chat.text
            content = chat.json()["choices"][0]["logprobs"]["content"]
            ids = [int(p["token"].removeprefix("token_id:")) for p in content]
            assert len(ids) == 8

            replay = await c.post("/api/v1/inference/replay", json={
                "model": "tiny", "messages": messages, "output_token_ids": ids, "top_k": 5})
            assert replay.status_code == 200, replay.text
            positions = replay.json()["positions"]
            assert [p["token_id"] for p in positions] == ids
            for original, replayed in zip(content, positions, strict=True):
                assert abs(original["logprob"] - replayed["logprob"]) < 1e-3

            init = {"block_hash": BLOCK_HASH, "block_height": 10, "public_key": PUBLIC_KEY,
                    "node_id": 0, "node_count": 1, "params": msgspec.to_builtins(TEST_PARAMS)}
            busy = await c.post("/api/v1/pow/init/generate", json=init)
            assert busy.status_code == 409
            assert busy.json()["state"] == "INFERENCE"

            assert (await c.post("/api/v1/stop")).status_code == 200
            assert (await c.get("/api/v1/state")).json()["state"] == "STOPPED"
            gen = await c.post("/api/v1/pow/init/generate", json=init)
            assert gen.status_code == 200, gen.text
            while (status := (await c.get("/api/v1/pow/status")).json())["checked"] < 64:
                await trio.sleep(0.1)
            assert status["status"] == "GENERATING" and status["valid"] > 0

            # a host's claim: the first 32 nonces with made-up distances below r_target
            claim = {"public_key": PUBLIC_KEY, "block_hash": BLOCK_HASH, "block_height": 10,
                     "nonces": list(range(32)), "dist": [1.0] * 32}
            verdict = (await c.post("/api/v1/pow/validate", json=claim)).json()
            assert verdict["n_checked"] == 32
            assert verdict["n_invalid"] > 5 and verdict["fraud_detected"] is True
            assert (await c.post("/api/v1/stop")).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.returncode not in (0, -15):
            print(proc.stdout.read().decode(errors="replace")[-4000:])
