"""The ML node service: its mode (`state`), PoC controller (`pow`), commands (`node`), HTTP API
(`app`) and server (`server`). `serve_mlnode` is the entry point."""

from mlnode.service.config import MlNodeConfig
from mlnode.service.server import serve_mlnode

__all__ = ["MlNodeConfig", "serve_mlnode"]
