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
from quart import Blueprint, Response

from api.broker.broker import Broker, DuplicateNode, NodeView, UnknownNode
from api.broker.state import NodeSpec
from api.jsonhttp import answer_bad_bodies, error_response, json_response, read_body

PREFIX = "/admin/v1/nodes"
MAX_BODY = 1 << 20


class Refusal(msgspec.Struct, frozen=True):
    node_id: str
    error: str


class BatchAdded(msgspec.Struct, frozen=True):
    added: list[NodeView]
    refused: list[Refusal]


def admin_blueprint(broker: Broker) -> Blueprint:
    bp = Blueprint("broker_admin", __name__)

    answer_bad_bodies(bp)

    @bp.errorhandler(UnknownNode)
    async def on_unknown(e: UnknownNode) -> Response:
        return error_response(404, str(e))

    @bp.errorhandler(DuplicateNode)
    async def on_duplicate(e: DuplicateNode) -> Response:
        return error_response(409, str(e))

    @bp.get(PREFIX)
    async def list_nodes() -> Response:
        return json_response(broker.nodes())

    @bp.get(f"{PREFIX}/<node_id>")
    async def get_node(node_id: str) -> Response:
        return json_response(broker.node(node_id))

    @bp.post(PREFIX)
    async def add_node() -> Response:
        return json_response(broker.add(await read_body(NodeSpec, MAX_BODY)))

    @bp.post(f"{PREFIX}/batch")
    async def add_nodes() -> Response:
        specs = await read_body(list[NodeSpec], MAX_BODY)
        added, refused = broker.add_many(specs)
        return json_response(BatchAdded(added, [Refusal(getattr(e, "node_id", ""), str(e))
                                        for e in refused]), 201)

    @bp.delete(f"{PREFIX}/<node_id>")
    async def delete_node(node_id: str) -> Response:
        return json_response(broker.remove(node_id))

    @bp.post(f"{PREFIX}/<node_id>/enable")
    async def enable_node(node_id: str) -> Response:
        return json_response(broker.enable(node_id))

    @bp.post(f"{PREFIX}/<node_id>/disable")
    async def disable_node(node_id: str) -> Response:
        return json_response(broker.disable(node_id))

    return bp
