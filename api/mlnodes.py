"""How the API node's request paths reach its ML nodes: a pool that lends one node serving a
model for the length of a request (inference or validation replay). The broker (`api/broker/`)
is the real pool: it knows each node's state and load; `StaticPool` serves fixed URLs for tests
and single-node set-ups. Whoever holds a lease must return it (use `async with`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import msgspec


class MlNodeLease(msgspec.Struct, frozen=True):
    node_id: str
    url: str          # the ML node's base URL (control API under /api/v1, OpenAI under /v1)


class NoMlNode(Exception):
    """No ML node of this host can serve the model now (the API answers 503)."""

    def __init__(self, model: str, reason: str = "") -> None:
        super().__init__(f"no ML node of this host serves model {model!r} now"
                         + (f": {reason}" if reason else ""))
        self.model, self.reason = model, reason


class MlNodePool(Protocol):
    def lease(self, model: str) -> AsyncIterator[MlNodeLease]:
        """`async with pool.lease(model) as node:` one node serving `model`; NoMlNode if none."""
        ...


class StaticPool:
    """Fixed ML nodes, each serving the models listed for it; leases go round-robin."""

    def __init__(self, nodes: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        # node_id -> (url, models)
        self._nodes = dict(nodes)
        self._next = 0

    @asynccontextmanager
    async def lease(self, model: str) -> AsyncIterator[MlNodeLease]:
        serving = [(nid, url) for nid, (url, models) in sorted(self._nodes.items())
                   if model in models]
        if not serving:
            raise NoMlNode(model)
        node_id, url = serving[self._next % len(serving)]
        self._next += 1
        yield MlNodeLease(node_id=node_id, url=url)
