"""`serve_mock_mlnode`: a mock ML node on Hypercorn's trio worker, same HTTP contract as the real.

The control API is the real one: the real app (`mlnode.service.app.create_app`) over the real
`MlNode` (its state table, command lock, watchdog, 409s), with the PoC function replaced by a
BLAKE3 one and the generation loop by a scripted one (`poc`), and the vLLM backend by the mock
language model (`backend`). What the mock adds:
  * a fault hook in front of every route but /mock/...: a disappeared node hangs until it comes
    back, then the scripted delay, then (on the scripted paths) a 200 whose body is not JSON;
  * GET /mock/script, POST /mock/script (merge the given fields), PUT /mock/script (replace),
    GET /mock/stats (requests seen per path, the served model).
A scripted stream cut (`StreamCut` raised in the body) is logged as one line, not as Hypercorn's
"Error in ASGI Framework" traceback.
A trio service function like `serve_mlnode`; cancelling its nursery stops everything.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import trio
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from chain.types.codec import to_json
from mlnode.service.app import create_app
from mlnode.service.config import MlNodeConfig
from mlnode.service.node import MlNode
from mlnode.service.schema import ErrorView
from mlnode.service.server import hypercorn_config
from testermint_py.mock_mlnode.backend import MockBackend, StreamCut
from testermint_py.mock_mlnode.poc import MockPocFunction, MockPowController
from testermint_py.mock_mlnode.script import MockScript, matches
from testermint_py.mock_mlnode.state import ScriptHolder

log = logging.getLogger(__name__)


def _scripted_cut(error: BaseException | None) -> StreamCut | None:
    """The `StreamCut` that `error` is (or a group of nothing else holds)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, StreamCut) else None


def _unless_scripted_cut(record: logging.LogRecord) -> bool:
    """Hypercorn logs the app's errors to this module's logger (`hypercorn_config`)."""
    cut = _scripted_cut(record.exc_info[1]) if record.exc_info else None
    if cut is not None:
        log.info("%s", cut)
        return False
    return True


log.addFilter(_unless_scripted_cut)

MOCK_PREFIX = "/mock/"
# What a scripted invalid-JSON answer carries: the start of a body, cut off.
INVALID_JSON = b'{"id": "mock", "choices": [{"index": 0, "message": {"role": "assis'
# Faster than the real node's defaults: tests wait on callbacks and failures.
DEFAULT_CONFIG = MlNodeConfig(send_interval_s=0.05, watchdog_interval_s=0.1,
                              unhealthy_strikes=1, batch_size=64)


class MockStats(msgspec.Struct):
    requests: dict[str, int]
    served_model: str | None


class MockMlNode(MlNode):
    """The real `MlNode` with the mock PoC controller."""

    def __init__(self, nursery: trio.Nursery, config: MlNodeConfig, backend: MockBackend,
                 client: httpx.AsyncClient, script: ScriptHolder) -> None:
        super().__init__(nursery, config, backend, client, model_factory=MockPocFunction)
        self.pow = MockPowController(nursery, config, client, script,
                                     on_failure=self._pow_failed)


def _error(status: int, message: str) -> Response:
    return Response(to_json(ErrorView(message)), status=status, content_type="application/json")


def install_mock_routes(app: QuartTrio, script: ScriptHolder, backend: MockBackend) -> None:
    async def faults() -> Response | None:
        path = request.path
        if path.startswith(MOCK_PREFIX):
            return None
        script.requests[path] += 1
        await script.wait_present()
        current = script.current
        if current.delay_s and matches(path, current.delay_paths):
            await trio.sleep(current.delay_s)
        if matches(path, current.invalid_json_paths):
            return Response(INVALID_JSON, status=200, content_type="application/json")
        return None

    # First of the hooks: a disappeared node answers nothing, not even a 401.
    app.before_request_funcs.setdefault(None, []).insert(0, faults)

    def script_answer() -> Response:
        return Response(msgspec.json.encode(script.current), content_type="application/json")

    @app.get("/mock/script")
    async def get_script() -> Response:
        return script_answer()

    @app.route("/mock/script", methods=["POST", "PUT"])
    async def set_script() -> Response:
        body = await request.get_data(as_text=False)
        try:
            given = msgspec.json.decode(body, type=dict[str, Any])
            if request.method == "POST":
                given = msgspec.to_builtins(script.current) | given
            new = msgspec.convert(given, MockScript)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            return _error(400, f"cannot decode MockScript: {e}")
        script.set(new)
        log.info("mock ML node script: %s", new)
        return script_answer()

    @app.get("/mock/stats")
    async def get_stats() -> Response:
        return Response(msgspec.json.encode(MockStats(dict(script.requests),
                                                      backend.served_name)),
                        content_type="application/json")


async def serve_mock_mlnode(
    config: MlNodeConfig | None = None,
    *,
    script: MockScript | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a mock ML node until cancelled (or `shutdown_trigger` returns).

    `config` defaults to `DEFAULT_CONFIG` (port 8080); `task_status.started` receives the base
    URL, e.g. "http://127.0.0.1:8080".
    """
    cfg = config or DEFAULT_CONFIG
    holder = ScriptHolder(script or MockScript())
    hyper = hypercorn_config(cfg, "testermint_py.mock_mlnode.server")

    async with httpx.AsyncClient(timeout=None) as client:
        async with trio.open_nursery() as nursery:
            backend = MockBackend(holder)
            node = MockMlNode(nursery, cfg, backend, client, holder)
            try:
                node.start()
                app = create_app(node)
                install_mock_routes(app, holder, backend)

                async def run(task_status: trio.TaskStatus[list[str]]) -> None:
                    await serve(app, hyper, shutdown_trigger=shutdown_trigger,
                                task_status=task_status)
                    nursery.cancel_scope.cancel()

                binds: list[str] = await nursery.start(run)
                task_status.started(binds[0])
                await trio.sleep_forever()
            finally:
                await node.close()
