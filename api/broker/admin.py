"""The admin API over the broker's node list (gonka-api-node.md section 3), as a Quart blueprint
the API node mounts on its admin server (never on the public one):

    GET    /admin/v1/nodes                -> [NodeView] with the live state
    GET    /admin/v1/nodes/<id>           -> NodeView | 404
    POST   /admin/v1/nodes                <- NodeSpec -> 200 NodeView | 400 | 409 id taken
    POST   /admin/v1/nodes/batch          <- [NodeSpec] -> 201 {added: [NodeView], refused:
                                             [{node_id, error}]} (each added or refused alone)
    DELETE /admin/v1/nodes/<id>           -> 200 NodeView (the removed node) | 404
    POST   /admin/v1/nodes/<id>/enable    -> 200 NodeView | 404   (in force from the next PoC
    POST   /admin/v1/nodes/<id>/disable   -> 200 NodeView | 404    start; see api.broker.state)

Errors are {"error": message}. Handlers translate HTTP to broker calls and hold no state.
"""

from __future__ import annotations

import msgspec
from quart import Blueprint, Response, request

from api.broker.broker import Broker, DuplicateNode, UnknownNode
from api.broker.state import NodeSpec

PREFIX = "/admin/v1/nodes"
MAX_BODY = 1 << 20


class AdminError(msgspec.Struct, frozen=True):
    error: str


class Refusal(msgspec.Struct, frozen=True):
    node_id: str
    error: str


class BatchAdded(msgspec.Struct, frozen=True):
    added: list
    refused: list[Refusal]


def _json(obj: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status=status, content_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json(AdminError(message), status)


async def _body(type_: type):
    data = await request.get_data(as_text=False)
    if len(data) > MAX_BODY:
        raise _BadBody(f"body over {MAX_BODY} bytes")
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.DecodeError as e:
        raise _BadBody(str(e)) from None


class _BadBody(Exception):
    pass


def admin_blueprint(broker: Broker) -> Blueprint:
    bp = Blueprint("broker_admin", __name__)

    @bp.errorhandler(_BadBody)
    async def on_bad_body(e: _BadBody) -> Response:
        return _error(400, f"invalid body: {e}")

    @bp.errorhandler(UnknownNode)
    async def on_unknown(e: UnknownNode) -> Response:
        return _error(404, str(e))

    @bp.errorhandler(DuplicateNode)
    async def on_duplicate(e: DuplicateNode) -> Response:
        return _error(409, str(e))

    @bp.get(PREFIX)
    async def list_nodes() -> Response:
        return _json(broker.nodes())

    @bp.get(f"{PREFIX}/<node_id>")
    async def get_node(node_id: str) -> Response:
        return _json(broker.node(node_id))

    @bp.post(PREFIX)
    async def add_node() -> Response:
        return _json(broker.add(await _body(NodeSpec)))

    @bp.post(f"{PREFIX}/batch")
    async def add_nodes() -> Response:
        specs = await _body(list[NodeSpec])
        added, refused = broker.add_many(specs)
        return _json(BatchAdded(added, [Refusal(getattr(e, "node_id", ""), str(e))
                                        for e in refused]), 201)

    @bp.delete(f"{PREFIX}/<node_id>")
    async def delete_node(node_id: str) -> Response:
        return _json(broker.remove(node_id))

    @bp.post(f"{PREFIX}/<node_id>/enable")
    async def enable_node(node_id: str) -> Response:
        return _json(broker.enable(node_id))

    @bp.post(f"{PREFIX}/<node_id>/disable")
    async def disable_node(node_id: str) -> Response:
        return _json(broker.disable(node_id))

    return bp
