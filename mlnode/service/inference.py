"""What the ML node needs from an inference backend, and the vLLM backend that provides it.

The service talks to `InferenceBackend` only: tests use a fake one, production wraps
`mlnode.inference` (the vLLM subprocess manager, its proxy and the replay client), imported
lazily so the service loads and is testable without them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol

import trio
from quart import Request, Response

from mlnode.service.config import MlNodeConfig

# How much of a dead backend's log goes into the recorded failure.
EXIT_LOG_CHARS = 600


class InferenceBackend(Protocol):
    async def up(self, model: str, dtype: str, additional_args: list[str],
                 served_model_name: str | None) -> None:
        """Start serving `model`; returns once healthy, raises (any Exception) if it cannot."""

    async def down(self) -> None:
        """Stop serving; a no-op when nothing runs."""

    async def aclose(self) -> None:
        """Stop serving and release everything (the service is shutting down)."""

    def is_running(self) -> bool:
        """True while the backend process lives (False after it exited on its own too)."""

    async def healthy(self) -> bool:
        """True if the backend answers its health check."""

    def describe_exit(self) -> str:
        """Why the backend process is gone (exit status, last log lines), for the failure."""

    async def forward(self, request: Request, path: str) -> Response:
        """Proxy `request` to the backend's `path` (OpenAI API, tokenize)."""

    @property
    def replay_request_type(self) -> type:
        """The msgspec Struct that POST /api/v1/inference/replay bodies decode to."""

    async def replay(self, request: Any) -> Any:
        """Teacher-forced replay of a recorded output; returns a msgspec Struct.

        An error with an int `status` attribute (400 for a bad request) keeps that status."""


class VllmBackend:
    """`InferenceBackend` over `mlnode.inference`'s vLLM subprocess manager, proxy and replay."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    @classmethod
    def create(cls, nursery: trio.Nursery, config: MlNodeConfig) -> VllmBackend:
        from mlnode.inference.vllm_server import InferenceManager

        log_dir = Path(config.log_dir) if config.log_dir else \
            Path(tempfile.gettempdir()) / "gonka-mlnode-logs"
        manager = InferenceManager(nursery, python=config.vllm_python, host=config.vllm_host,
                                   port=config.vllm_port, log_dir=log_dir,
                                   start_timeout_s=config.vllm_start_timeout_s)
        return cls(manager)

    async def up(self, model: str, dtype: str, additional_args: list[str],
                 served_model_name: str | None) -> None:
        await self.manager.up(model, dtype=dtype, additional_args=list(additional_args),
                              served_model_name=served_model_name)

    async def down(self) -> None:
        await self.manager.down()

    async def aclose(self) -> None:
        await self.manager.aclose()

    def is_running(self) -> bool:
        return self.manager.is_running()

    async def healthy(self) -> bool:
        return await self.manager.healthy()

    def describe_exit(self) -> str:
        info = self.manager.exit_info
        if info is None:
            return "no exit information"
        tail = info.log_tail.strip()[-EXIT_LOG_CHARS:]
        return f"exit status {info.returncode}" + (f"; log ends: {tail}" if tail else "")

    async def forward(self, request: Request, path: str) -> Response:
        from mlnode.inference.proxy import forward
        return await forward(self.manager, request, path)

    @property
    def replay_request_type(self) -> type:
        from mlnode.inference.replay import ReplayRequest
        return ReplayRequest

    async def replay(self, request: Any) -> Any:
        from mlnode.inference.replay import replay
        return await replay(self.manager.client, self.manager.base_url, request)
