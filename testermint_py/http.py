"""Serving a small Quart-trio app in a test's nursery (callback recorders, stand-in servers):
`binds = await nursery.start(serve_app, app)` gives its URL(s), on a free port unless told."""

from __future__ import annotations

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


async def serve_app(app, port: int = 0, *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 0.1
    await serve(app, config, task_status=task_status)
