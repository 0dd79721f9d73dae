"""`serve_mlnode`: the ML node service (`MlNode` and its HTTP API) on Hypercorn's trio worker.

A trio service function: `await nursery.start(serve_mlnode, config)` returns the base URL once
the socket listens (port 0 picks a free port); cancelling that nursery stops the server, the PoC
tasks, the watchdog and the inference backend. It must never outlive its nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from mlnode.pow.validation import ModelFactory
from mlnode.service.app import create_app
from mlnode.service.config import MlNodeConfig
from mlnode.service.inference import InferenceBackend, VllmBackend
from mlnode.service.node import MlNode
from mlnode.service.pow import default_model_factory

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def hypercorn_config(cfg: MlNodeConfig, logger: str) -> Config:
    """Hypercorn settings of an ML-node control server (the real one and testermint's mock)."""
    hyper = Config()
    hyper.bind = [f"[{cfg.host}]:{cfg.port}" if ":" in cfg.host else f"{cfg.host}:{cfg.port}"]
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger(logger)
    hyper.graceful_timeout = cfg.graceful_timeout_s
    # Inference requests can stream for minutes; the backend's own timeouts bound them.
    hyper.keep_alive_timeout = 300
    return hyper


async def serve_mlnode(
    config: MlNodeConfig | None = None,
    *,
    backend: InferenceBackend | None = None,
    model_factory: ModelFactory = default_model_factory,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ML node until cancelled (or `shutdown_trigger` returns).

    `backend` defaults to vLLM (`VllmBackend`); `task_status.started` receives the base URL,
    e.g. "http://127.0.0.1:8080".
    """
    cfg = config or MlNodeConfig()
    if cfg.host not in LOOPBACK and cfg.auth_token is None:
        log.warning("the ML node control API listens on %s without an auth token", cfg.host)
    hyper = hypercorn_config(cfg, "mlnode.service.server")

    async with httpx.AsyncClient(timeout=None) as client:
        async with trio.open_nursery() as nursery:
            node = MlNode(nursery, cfg, backend or VllmBackend.create(nursery, cfg),
                          client, model_factory=model_factory)
            try:
                node.start()
                app = create_app(node)

                async def run(task_status: trio.TaskStatus[list[str]]) -> None:
                    await serve(app, hyper, shutdown_trigger=shutdown_trigger,
                                task_status=task_status)
                    nursery.cancel_scope.cancel()    # served until the trigger: stop the rest

                binds: list[str] = await nursery.start(run)
                task_status.started(binds[0])
                await trio.sleep_forever()
            finally:
                await node.close()
