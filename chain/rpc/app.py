"""The chain RPC as a Quart-trio application over a `NodeView` (DESIGN.md section 4).

Routes:
  GET  /status                  -> StatusView
  GET  /blocks/{height}         -> BlockView            (400 bad height, 404 unknown height)
  GET  /commits/{height}        -> CommitView           (400, 404)
  GET  /txs/{hash}              -> TxView               (400 bad hash, 404 not committed)
  POST /txs                     <- BroadcastRequest -> BroadcastView
                                   (400 bad body or undecodable tx, 413 body too large)
  GET  /query/{path}?height=&k=v -> QueryView           (400 bad height / query failed, 404 height)
  WS   /events?from_height=&types=a,b -> EventFrame per height (400 on bad parameters)

Every error is `{"error": {"code": slug, "message": text}}` (`chain.rpc.schema.ErrorBody`).
Binary values follow `chain.rpc.schema`: hex for hashes and ids, base64 for raw txs.

Handlers translate between HTTP and the node; they must never change node state other than
through `NodeView.broadcast_tx`, and never block the trio loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from chain.app.abci import OK
from chain.rpc.events import stream_events
from chain.rpc.node_view import NodeView
from chain.rpc.schema import (
    BroadcastRequest,
    ErrorBody,
    ErrorDetail,
    QueryView,
    block_view,
    broadcast_view,
    commit_view,
    status_view,
    tx_view,
)
from chain.types.codec import MAX_JSON_BYTES, DecodeError, from_json, to_json
from chain.types.tx import decode_tx

log = logging.getLogger(__name__)

_SLUGS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
          500: "internal"}


class RpcConfig(msgspec.Struct, frozen=True):
    # POST bodies above this get 413: a max-size tx in base64 plus the JSON around it fits.
    max_body_bytes: int = MAX_JSON_BYTES
    # Frames queued per /events subscriber once live; a full queue disconnects it.
    event_queue_size: int = 256
    # How long a disconnecting subscriber gets to take its last frame and the close frame.
    close_timeout_s: float = 5.0
    max_event_types: int = 64
    # How long open connections get to finish when the server is asked to shut down.
    graceful_timeout_s: float = 3.0


class ApiError(Exception):
    """A request the RPC refuses: HTTP status, error slug and message."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 app_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _SLUGS.get(status, "error")
        self.message = message
        self.app_code = app_code


def _json(obj: object, status: int = 200) -> Response:
    return Response(to_json(obj), status=status, content_type="application/json")


def _error(e: ApiError) -> Response:
    return _json(ErrorBody(ErrorDetail(e.code, e.message, e.app_code)), e.status)


def parse_height(text: str, what: str = "height") -> int:
    """A positive decimal height, or ApiError 400."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) < 1:
        raise ApiError(400, f"{what} must be a positive integer, got {text[:40]!r}")
    return int(text)


def parse_hash(text: str) -> bytes:
    """A 32-byte hash in hex, or ApiError 400."""
    if len(text) != 64:
        raise ApiError(400, f"a tx hash is 64 hex characters, got {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ApiError(400, f"a tx hash is 64 hex characters, got {text!r}") from None


def parse_event_args(args: Mapping[str, str], latest: int, max_types: int
                     ) -> tuple[int, frozenset[str]]:
    """from_height (default: the next height) and the event types to keep (empty: all)."""
    raw_from = args.get("from_height")
    from_height = latest + 1 if raw_from in (None, "") else parse_height(raw_from, "from_height")
    types = frozenset(t for t in args.get("types", "").split(",") if t)
    if len(types) > max_types:
        raise ApiError(400, f"at most {max_types} event types, got {len(types)}")
    return from_height, types


def create_app(view: NodeView, config: RpcConfig | None = None) -> QuartTrio:
    """The RPC application serving `view`."""
    cfg = config or RpcConfig()
    app = QuartTrio("chain.rpc")
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes

    @app.errorhandler(ApiError)
    async def on_api_error(e: ApiError) -> Response:
        return _error(e)

    @app.errorhandler(HTTPException)
    async def on_http_error(e: HTTPException) -> Response:
        status = e.code or 500
        return _error(ApiError(status, e.description or e.name))

    @app.errorhandler(Exception)
    async def on_unexpected(e: Exception) -> Response:
        log.exception("RPC handler failed")
        return _error(ApiError(500, f"internal error: {type(e).__name__}"))

    def existing_height(text: str) -> int:
        height = parse_height(text)
        if height > view.latest_height():
            raise ApiError(404, f"height {height} is not committed yet; latest is "
                                f"{view.latest_height()}")
        return height

    @app.get("/status")
    async def get_status() -> Response:
        return _json(status_view(await view.status()))

    @app.get("/blocks/<height>")
    async def get_block(height: str) -> Response:
        h = existing_height(height)
        block = await view.block(h)
        if block is None:
            raise ApiError(404, f"no block stored at height {h}")
        return _json(block_view(block))

    @app.get("/commits/<height>")
    async def get_commit(height: str) -> Response:
        h = existing_height(height)
        commit = await view.commit(h)
        if commit is None:
            raise ApiError(404, f"no commit stored for height {h}")
        return _json(commit_view(commit))

    @app.get("/txs/<tx_hash>")
    async def get_tx(tx_hash: str) -> Response:
        h = parse_hash(tx_hash)
        record = await view.tx(h)
        if record is None:
            raise ApiError(404, f"no committed tx with hash {h.hex()}")
        return _json(tx_view(h, record))

    @app.post("/txs")
    async def post_tx() -> Response:
        body = await request.get_data(as_text=False)
        try:
            req = from_json(body, BroadcastRequest, max_size=cfg.max_body_bytes)
        except DecodeError as e:
            raise ApiError(400, str(e)) from None
        try:
            decode_tx(req.tx)
        except DecodeError as e:
            raise ApiError(400, str(e), code="invalid_tx") from None
        result = await view.broadcast_tx(req.tx, req.mode)
        return _json(broadcast_view(req.mode, result))

    @app.get("/query/<path:query_path>")
    async def get_query(query_path: str) -> Response:
        params = {k: v for k, v in request.args.items() if k != "height"}
        height: int | None = None
        if "height" in request.args:
            height = existing_height(request.args["height"])
        result = await view.query(query_path, params, height)
        if result.code != OK:
            raise ApiError(400, result.log or f"query failed with code {result.code}",
                           code="query_failed", app_code=result.code)
        try:
            msgspec.json.decode(result.value)
        except msgspec.DecodeError:
            log.error("query %s returned invalid JSON", query_path)
            raise ApiError(500, f"query {query_path} returned invalid JSON") from None
        return _json(QueryView(result.height, msgspec.Raw(result.value)))

    @app.websocket("/events")
    async def events() -> Response | None:
        try:
            from_height, types = parse_event_args(websocket.args, view.latest_height(),
                                                  cfg.max_event_types)
        except ApiError as e:
            return _error(e)  # before accept: the handshake is refused with this response
        await websocket.accept()
        end = await stream_events(view, websocket, from_height, types,
                                  queue_size=cfg.event_queue_size,
                                  close_timeout=cfg.close_timeout_s)
        log.info("closing /events stream: %s", end.reason)
        if not end.aborted:
            with trio.move_on_after(cfg.close_timeout_s):
                await websocket.close(end.code, end.reason)
        return None

    return app
