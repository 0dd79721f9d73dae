"""The chain node's RPC: HTTP + WebSocket on Quart-trio/Hypercorn, and its Python client.

The server (`serve_rpc`, `create_app`) is written against `NodeView`, which the node implements;
`RpcClient` is what the CLI, the API node and the harness use. JSON shapes: `chain.rpc.schema`
(hex for hashes and ids, base64 for raw txs). This package must never reach into node internals
other than through `NodeView`.
"""

from chain.rpc.app import ApiError, RpcConfig, create_app
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.events import CLOSE_HEIGHT_UNAVAILABLE, CLOSE_SLOW_CLIENT, stream_events
from chain.rpc.node_view import (
    BROADCAST_MODES,
    BlockEvents,
    BroadcastMode,
    BroadcastResult,
    IndexedEvent,
    NodeStatus,
    NodeView,
    TxRecord,
    ValidatorInfo,
)
from chain.rpc.server import DEFAULT_RPC_PORT, serve_rpc

__all__ = [
    "ApiError",
    "BROADCAST_MODES",
    "BlockEvents",
    "BroadcastMode",
    "BroadcastResult",
    "CLOSE_HEIGHT_UNAVAILABLE",
    "CLOSE_SLOW_CLIENT",
    "DEFAULT_RPC_PORT",
    "IndexedEvent",
    "NodeStatus",
    "NodeView",
    "RpcClient",
    "RpcConfig",
    "RpcError",
    "TxRecord",
    "ValidatorInfo",
    "create_app",
    "serve_rpc",
    "stream_events",
]
