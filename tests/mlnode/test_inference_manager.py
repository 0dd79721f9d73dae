"""InferenceManager and the proxy against a fake vLLM (tests/mlnode/fake_vllm.py): fast tests of
start, health, failure, stop (process group included), streaming and error mapping."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import httpx
import hypercorn.config
import hypercorn.trio
import pytest
import trio
from quart import request
from quart_trio import QuartTrio

from mlnode.inference.proxy import forward
from mlnode.inference.vllm_server import InferenceError, InferenceManager
from testermint_py.cluster import free_ports

FAKE = Path(__file__).with_name("fake_vllm.py")
GUARD_S = 60  # a safety net against hangs, not a performance bound



def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:\tZ") for line in f)
    except FileNotFoundError:
        return False


async def _until(predicate) -> None:
    with trio.fail_after(GUARD_S):
        while not predicate():
            await trio.sleep(0.05)


@pytest.fixture
def fake_python(tmp_path) -> str:
    """An executable that takes vLLM's command line and runs the fake server."""
    wrapper = tmp_path / "fake-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
async def make_manager(nursery, fake_python, tmp_path):
    managers: list[InferenceManager] = []

    def make(mode: str = "ok", **kwargs) -> InferenceManager:
        env = {"FAKE_VLLM_MODE": mode, **kwargs.pop("env", {})}
        kwargs.setdefault("start_timeout_s", GUARD_S)
        manager = InferenceManager(
            nursery, python=fake_python, port=free_ports(1)[0], log_dir=tmp_path / "logs",
            env=env, **kwargs,
        )  # fmt: skip
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.aclose()


async def test_up_waits_for_health_and_down_stops(make_manager, tmp_path):
    manager = make_manager()
    await manager.up(
        "/models/tiny",
        dtype="float32",
        additional_args=["--max-model-len", "64"],
        served_model_name="tiny",
    )
    assert manager.is_running() and manager.is_ready()
    assert await manager.healthy()
    assert manager.model == "tiny"
    log = manager.log_path.read_text()
    assert "--dtype', 'float32'" in log and "'--max-model-len', '64'" in log
    assert "HF_HUB_OFFLINE=1" in log
    assert f"cwd {tmp_path / 'logs'}" in log  # not the repository: python -m would import it
    await manager.down()
    assert not manager.is_running()
    assert not await manager.healthy()
    assert manager.exit_info is None
    await manager.down()  # idempotent


async def test_up_again_replaces_the_running_server(make_manager):
    manager = make_manager()
    await manager.up("a")
    first = manager.log_path
    await manager.up("b")
    assert manager.log_path != first
    assert manager.model == "b" and manager.is_ready()


async def test_process_that_exits_during_start_is_an_error_with_its_log(make_manager):
    manager = make_manager("exit")
    with pytest.raises(InferenceError) as excinfo:
        await manager.up("broken")
    assert "code 3" in excinfo.value.message
    assert "Engine core initialization failed" in excinfo.value.message
    assert not manager.is_running()
    assert manager.exit_info is None  # it never served


async def test_never_healthy_times_out_and_is_stopped(make_manager):
    manager = make_manager("never-healthy", start_timeout_s=2)
    with pytest.raises(InferenceError, match="not healthy within"):
        await manager.up("slow")
    assert not manager.is_running()


async def test_down_kills_the_whole_process_group(make_manager, tmp_path):
    pid_file = tmp_path / "child.pid"
    manager = make_manager(env={"FAKE_VLLM_CHILD_PID_FILE": str(pid_file)})
    await manager.up("tiny")
    child = int(pid_file.read_text())
    assert _alive(child)
    await manager.down()
    await _until(lambda: not _alive(child))


async def test_sigterm_ignored_escalates_to_sigkill(make_manager):
    manager = make_manager("ignore-term", stop_timeout_s=0.5)
    await manager.up("stubborn")
    await manager.down()
    assert not manager.is_running()


async def test_unexpected_exit_is_reported_for_the_watchdog(make_manager):
    manager = make_manager()
    await manager.up("tiny")
    pid = manager._run.process.pid
    os.kill(pid, 9)
    await _until(lambda: manager.exit_info is not None)
    assert manager.exit_info.returncode == -9
    assert "fake-vllm" in manager.exit_info.log_tail
    assert not manager.is_running()


async def test_cancelled_up_leaves_nothing_running(make_manager, tmp_path):
    pid_file = tmp_path / "child.pid"
    manager = make_manager("never-healthy", env={"FAKE_VLLM_CHILD_PID_FILE": str(pid_file)})
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as n:
            n.start_soon(manager.up, "tiny")
            await _until(pid_file.exists)
            scope.cancel()
    assert not manager.is_running()
    await _until(lambda: not _alive(int(pid_file.read_text())))


async def test_down_abandons_a_start_in_progress(make_manager, tmp_path):
    manager = make_manager("never-healthy")
    outcome: list[BaseException] = []

    async def start() -> None:
        try:
            await manager.up("tiny")
        except InferenceError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as n:
        n.start_soon(start)
        await _until(manager.is_running)
        await manager.down()
    assert not manager.is_running()
    assert "abandoned" in str(outcome[0])


async def test_missing_python_is_an_inference_error(nursery, tmp_path):
    manager = InferenceManager(
        nursery, python=str(tmp_path / "no-python"), port=free_ports(1)[0],
        log_dir=tmp_path / "logs",
    )
    with pytest.raises(InferenceError, match="cannot start"):
        await manager.up("tiny")
    assert not manager.is_running()
    await manager.aclose()


# ---- proxy ----------------------------------------------------------------------------------


@pytest.fixture
async def proxy_url(nursery, make_manager):
    """A Quart-trio app that forwards /v1/* to the manager; returns (base url, manager)."""
    manager = make_manager()
    app = QuartTrio(__name__)

    @app.route("/v1/<path:rest>", methods=["GET", "POST"])
    async def v1(rest: str):
        return await forward(manager, request, "/v1/" + rest)

    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{free_ports(1)[0]}"]
    config.accesslog = config.errorlog = None
    binds = await nursery.start(partial(hypercorn.trio.serve, app, config))
    return binds[0], manager


async def test_proxy_without_backend_is_503(proxy_url):
    url, _ = proxy_url
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{url}/v1/chat/completions", json={"model": "tiny"})
    assert response.status_code == 503
    assert response.json() == {"error": "No vLLM backend available"}


async def test_proxy_forwards_body_query_and_end_to_end_headers(proxy_url):
    url, manager = proxy_url
    await manager.up("/m", served_model_name="tiny")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/v1/chat/completions", json={"model": "tiny"},
            headers={"x-custom": "kept", "connection": "keep-alive, x-drop-me", "x-drop-me": "1"},
        )  # fmt: skip
        models = await client.get(f"{url}/v1/models?limit=1")
    assert response.status_code == 200
    assert response.json()["model"] == "tiny"
    assert response.headers["x-fake-echo"] == "kept"
    assert response.headers["x-saw-connection-token"] == "False"
    assert models.json()["data"] == [{"id": "tiny"}]
    assert models.json()["query"] == "limit=1"


async def test_proxy_streams_sse_without_buffering(proxy_url):
    url, manager = proxy_url
    await manager.up("/m")
    async with httpx.AsyncClient(timeout=GUARD_S) as client:
        async with client.stream(
            "POST", f"{url}/v1/chat/completions", json={"stream": True}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            # The fake holds back the rest until released: the first event must already be here.
            assert await anext(lines) == 'data: {"n": 1}'
            await client.get(f"{manager.base_url}/release")
            rest = [line async for line in lines if line]
    assert rest == ['data: {"n": 2}', "data: [DONE]"]


async def test_proxy_upstream_failure_is_502(make_manager):
    manager = make_manager()
    await manager.up("/m")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = QuartTrio(__name__)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as broken:

        @app.route("/v1/<path:rest>", methods=["GET"])
        async def v1(rest: str):
            return await forward(manager, request, "/v1/" + rest, client=broken)

        response = await app.test_client().get("/v1/models")
        assert response.status_code == 502
        assert "unreachable" in (await response.get_json())["error"]
