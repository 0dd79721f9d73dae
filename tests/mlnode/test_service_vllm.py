"""The service with the real vLLM backend adapter (`VllmBackend` over `InferenceManager`) and the
fake vLLM server of tests/mlnode/fake_vllm.py: start, proxy, start failure, death."""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path

import httpx
import trio

from mlnode.inference.vllm_server import InferenceManager
from mlnode.service import MlNodeConfig, serve_mlnode
from mlnode.service.inference import VllmBackend
from testermint_py.cluster import free_ports

FAKE = Path(__file__).with_name("fake_vllm.py")
API = "/api/v1"


def fake_python(tmp_path: Path) -> str:
    wrapper = tmp_path / "fake-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def with_node(tmp_path: Path, mode: str, scenario) -> None:
    async with trio.open_nursery() as nursery:
        manager = InferenceManager(nursery, python=fake_python(tmp_path), port=free_ports(1)[0],
                                   log_dir=tmp_path / "logs", env={"FAKE_VLLM_MODE": mode},
                                   start_timeout_s=60)
        cfg = MlNodeConfig(port=0, watchdog_interval_s=0.02)
        url = await nursery.start(functools.partial(serve_mlnode, cfg,
                                                    backend=VllmBackend(manager)))
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await scenario(client, manager)
        nursery.cancel_scope.cancel()


async def test_inference_through_vllm_is_proxied_and_its_death_is_recorded(tmp_path):
    async def scenario(client: httpx.AsyncClient, manager: InferenceManager) -> None:
        r = await client.post(f"{API}/inference/up", json={"model": "tiny", "dtype": "float16"})
        assert r.status_code == 200, r.text
        assert (await client.get("/v1/models")).json()["data"] == [{"id": "tiny"}]
        r = await client.post("/v1/chat/completions", json={"model": "tiny", "messages": []})
        assert r.json()["model"] == "tiny"

        # When the vLLM process dies
        os.killpg(manager._run.process.pid, signal.SIGKILL)
        while (await client.get(f"{API}/state")).json()["state"] != "STOPPED":
            await trio.sleep(0.02)

        # Then the node is STOPPED with the exit recorded
        failure = (await client.get(f"{API}/state")).json()["failure"]
        assert failure.startswith("inference backend exited unexpectedly: exit status -9")

    await with_node(tmp_path, "ok", scenario)


async def test_a_vllm_that_cannot_start_is_a_500_with_its_log(tmp_path):
    async def scenario(client: httpx.AsyncClient, manager: InferenceManager) -> None:
        r = await client.post(f"{API}/inference/up", json={"model": "tiny"})
        assert r.status_code == 500
        assert "Engine core initialization failed" in r.json()["error"]
        assert (await client.get(f"{API}/state")).json()["state"] == "STOPPED"

    await with_node(tmp_path, "exit", scenario)
