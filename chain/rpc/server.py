"""`serve_rpc`: the chain RPC application served by Hypercorn's trio worker.

A trio service function: `await nursery.start(serve_rpc, view, host, port)` returns the base URL
once the socket listens (port 0 picks a free port), and cancelling that nursery stops the server
and every connection with it. A `shutdown_trigger` gives open requests `graceful_timeout_s` to
finish instead. It must never start threads or processes, or outlive its nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from chain.rpc.app import RpcConfig, create_app
from chain.rpc.node_view import NodeView

DEFAULT_RPC_PORT = 26657


async def serve_rpc(
    view: NodeView,
    host: str = "127.0.0.1",
    port: int = DEFAULT_RPC_PORT,
    *,
    config: RpcConfig | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the RPC for `view` on host:port until cancelled (or `shutdown_trigger` returns).

    `task_status.started` receives the base URL, e.g. "http://127.0.0.1:26657".
    """
    cfg = config or RpcConfig()
    hyper = Config()
    hyper.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("chain.rpc.server")
    hyper.graceful_timeout = cfg.graceful_timeout_s
    # Bodies are limited by the app (413 with a JSON error); this only stops absurd frames.
    hyper.websocket_max_message_size = 1 << 20

    app = create_app(view, cfg)

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, hyper, shutdown_trigger=shutdown_trigger, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(run)
        task_status.started(binds[0])
