"""`gonka devnet --mlnode real` without vLLM (one clear line, nothing started), and its inference
backend (tools/cli/devnet_mlnode.py) over a fake vLLM manager: loaded once from the start, kept
loaded through the ML node's stops, started again only when it failed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from chain.app.profiles import DEVNET_MODEL
from mlnode.inference.vllm_server import InferenceError
from tools.cli.devnet_mlnode import VLLM_ARGS, DevnetVllm


def test_mlnode_real_without_the_vllm_venv_says_how_to_build_it(gonka, tmp_path, monkeypatch):
    # Given no vLLM venv (its python does not exist)
    monkeypatch.setenv("GONKA_VLLM_PYTHON", "/nonexistent/python")
    root = tmp_path / "devnet"
    # When the devnet starts with the real ML node, then it refuses in one line saying how to
    # build the venv, before it starts (or even creates) anything
    error = gonka("devnet", "--home", str(root), "--mlnode", "real").error
    assert "/nonexistent/python" in error and "bash scripts/vllm_env.sh" in error
    assert not root.exists()


def test_mlnode_real_with_a_python_that_has_no_vllm_says_how_to_build_it(gonka, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("GONKA_VLLM_PYTHON", sys.executable)   # the project's venv: no vllm
    error = gonka("devnet", "--home", str(tmp_path / "devnet"), "--mlnode", "real").error
    assert "cannot import vllm" in error and "bash scripts/vllm_env.sh" in error


class FakeManager:
    """The part of mlnode.inference.vllm_server.InferenceManager the backend uses: a start
    that ends when the test says (`finish`), with `failure` or healthy."""

    def __init__(self) -> None:
        self.starts: list[tuple] = []
        self.running = self.ready = self.closed = False
        self.failure: str | None = None
        self._finish = trio.Event()

    def is_running(self) -> bool:
        return self.running

    def is_ready(self) -> bool:
        return self.ready

    def finish(self, failure: str | None = None) -> None:
        self.failure = failure
        self._finish.set()

    async def up(self, model, dtype="auto", additional_args=(), served_model_name=None) -> None:
        self.starts.append((model, dtype, tuple(additional_args), served_model_name))
        self.running = True
        try:
            await self._finish.wait()
        finally:
            self._finish = trio.Event()
            self.running = self.failure is None
        if self.failure is not None:
            raise InferenceError(self.failure)
        self.ready = True

    async def aclose(self) -> None:
        self.closed, self.running, self.ready = True, False, False


def backend_for(manager: FakeManager, nursery, events: list[str]) -> DevnetVllm:
    return DevnetVllm(manager, nursery, Path("/home/mlnode/tiny-llama"),
                      on_loaded=lambda s: events.append("loaded"),
                      on_failed=lambda m: events.append(f"failed: {m}"))


async def test_vllm_loads_once_from_the_start_and_stays_loaded_through_stops(nursery):
    # Given the devnet's backend, whose vLLM starts with the devnet
    manager, events = FakeManager(), []
    backend = backend_for(manager, nursery, events)
    backend.start_loading()
    await wait_all_tasks_blocked()
    assert manager.starts == [("/home/mlnode/tiny-llama", "float32", VLLM_ARGS, DEVNET_MODEL)]

    # When the ML node's inference start is cancelled (a PoC begins) before vLLM is up
    with trio.move_on_after(0.05):
        await backend.up(DEVNET_MODEL, "auto", [], None)
    # then vLLM keeps starting
    assert manager.running and len(manager.starts) == 1

    # and the next start of inference returns once it is up, with no second vLLM start
    async with trio.open_nursery() as waiting:
        waiting.start_soon(backend.up, DEVNET_MODEL, "auto", [], None)
        await wait_all_tasks_blocked()
        manager.finish()
    assert events == ["loaded"] and len(manager.starts) == 1

    # When the ML node stops inference (the next PoC), then vLLM stays loaded
    await backend.down()
    assert manager.is_ready() and backend.is_running()
    await backend.up(DEVNET_MODEL, "auto", [], None)      # at once
    assert len(manager.starts) == 1
    await backend.aclose()
    assert manager.closed


async def test_a_failed_start_fails_inference_up_and_the_next_up_starts_vllm_again(nursery):
    manager, events = FakeManager(), []
    backend = backend_for(manager, nursery, events)
    backend.start_loading()
    await wait_all_tasks_blocked()
    manager.finish("vLLM exited with code 1 before it was healthy")
    await wait_all_tasks_blocked()
    assert events == ["failed: vLLM exited with code 1 before it was healthy"]

    async def inference_up_fails() -> None:
        with pytest.raises(InferenceError, match="exited with code 1"):
            await backend.up(DEVNET_MODEL, "auto", [], None)

    async with trio.open_nursery() as waiting:
        waiting.start_soon(inference_up_fails)
        await wait_all_tasks_blocked()
        assert len(manager.starts) == 2     # the ML node's inference start tries again
        manager.finish("vLLM exited with code 1 before it was healthy")
    async with trio.open_nursery() as waiting:
        waiting.start_soon(backend.up, DEVNET_MODEL, "auto", [], None)
        await wait_all_tasks_blocked()
        manager.finish()
    assert manager.is_ready() and len(manager.starts) == 3


async def test_only_the_devnet_model_is_served(nursery):
    backend = backend_for(FakeManager(), nursery, [])
    with pytest.raises(InferenceError, match="serves gonka/tiny-llama only"):
        await backend.up("Qwen/Qwen2.5-7B-Instruct", "auto", [], None)
