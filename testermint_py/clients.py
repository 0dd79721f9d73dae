"""Typed clients of an API node for scenarios: the admin server (ML nodes, proposals) and the
public server's read endpoints. Answers decode into the node's own response types, so a change
of the wire shows up as a decode error in the scenario that reads it; a refusal raises
`ApiRefused` with the status and the node's message. (The chain RPC's typed client is
`chain.rpc.client.RpcClient`; signed inference requests go through `api.client`.)"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
import msgspec

from api.broker.admin import BatchAdded
from api.broker.broker import NodeView
from api.broker.state import NodeSpec
from api.node.admin import MODELS_PATH, PRICE_PATH, ModelProposed, PriceProposed

T = TypeVar("T")


class ApiRefused(Exception):
    """The API node answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error if error is not None else body)


class _Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 90) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    async def _call(self, method: str, path: str, as_type: type[T], body: Any = None,
                    ok: tuple[int, ...] = (200, 201)) -> T:
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            r = await http.request(method, f"{self.base_url}{path}", headers=self._headers,
                                   content=None if body is None else msgspec.json.encode(body))
        if r.status_code not in ok:
            raise ApiRefused(r.status_code, _message(r))
        return msgspec.json.decode(r.content, type=as_type)


class AdminClient(_Client):
    """The admin server (`/admin/v1/...`)."""

    async def nodes(self) -> list[NodeView]:
        return await self._call("GET", "/admin/v1/nodes", list[NodeView])

    async def node(self, node_id: str) -> NodeView:
        return await self._call("GET", f"/admin/v1/nodes/{node_id}", NodeView)

    async def add_node(self, spec: NodeSpec) -> NodeView:
        return await self._call("POST", "/admin/v1/nodes", NodeView, spec)

    async def add_nodes(self, specs: list[NodeSpec]) -> BatchAdded:
        return await self._call("POST", "/admin/v1/nodes/batch", BatchAdded, specs)

    async def delete_node(self, node_id: str) -> NodeView:
        return await self._call("DELETE", f"/admin/v1/nodes/{node_id}", NodeView)

    async def enable(self, node_id: str) -> NodeView:
        return await self._call("POST", f"/admin/v1/nodes/{node_id}/enable", NodeView)

    async def disable(self, node_id: str) -> NodeView:
        return await self._call("POST", f"/admin/v1/nodes/{node_id}/disable", NodeView)

    async def propose_price(self, price: int, denom: str = "ngonka") -> PriceProposed:
        return await self._call("POST", PRICE_PATH, PriceProposed,
                                {"price": price, "denom": denom})

    async def price_proposal(self) -> dict:
        return await self._call("GET", PRICE_PATH, dict)

    async def propose_model(self, model_id: str, units_of_compute_per_token: int,
                            **fields: Any) -> ModelProposed:
        return await self._call("POST", MODELS_PATH, ModelProposed,
                                {"id": model_id,
                                 "units_of_compute_per_token": units_of_compute_per_token,
                                 **fields})


class PublicClient(_Client):
    """The public server's read endpoints (inference requests are signed: `api.client`)."""

    async def status(self) -> dict:
        return await self._call("GET", "/v1/status", dict)

    async def models(self) -> list[dict]:
        return (await self._call("GET", "/v1/models", dict))["data"]

    async def pricing(self) -> dict:
        return await self._call("GET", "/v1/pricing", dict)

    async def participants(self) -> list[dict]:
        return (await self._call("GET", "/v1/participants", dict))["participants"]

    async def epoch(self, which: int | str = "latest") -> dict:
        return await self._call("GET", f"/v1/epochs/{which}", dict)

    async def inference(self, inference_id: str) -> dict:
        return await self._call("GET", f"/v1/chat/completions/{inference_id}", dict)
