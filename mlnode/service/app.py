"""The ML node's HTTP API as a Quart-trio application over an `MlNode` (DESIGN.md section 7).

Control routes (prefix /api/v1):
  GET  /state                 -> StateView {"state": STOPPED|POW|INFERENCE, "failure"?}
  POST /stop                  -> OkView
  GET  /health                -> HealthView (200 while the process serves)
  POST /pow/init/generate     <- PowInitRequest -> PowView
  POST /pow/init/validate     <- PowInitRequest -> PowView
  POST /pow/phase/generate    -> PowView
  POST /pow/phase/validate    -> PowView
  POST /pow/validate          <- ProofBatch -> ValidatedBatch (also POSTed to {url}/validated)
  GET  /pow/status            -> PowStatus
  POST /pow/stop              -> PowView
  POST /inference/up          <- InferenceUpRequest -> OkView (returns once the backend is up)
  POST /inference/down        -> OkView
  POST /inference/replay      <- the backend's replay request -> its replay response
Inference routes proxied to the backend while serving: /v1/chat/completions, /v1/completions,
/v1/models, /tokenize, /detokenize, /health.

Errors are `{"error": message}` plus `"state"` when the node's mode refused the request:
400 bad body (nothing changes), 401 missing token, 409 the mode refuses it, 413 body too large,
500 the backend failed to start, 502 the backend failed a request, 503 no backend to proxy to.
Handlers translate between HTTP and `MlNode`; they hold no state and never block the trio loop.
"""

from __future__ import annotations

import hmac
import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from chain.types.codec import DecodeError, from_json, to_json
from chain.types.poc import PowInitRequest, ProofBatch
from mlnode.pow.validation import ValidationError
from mlnode.service.node import BackendError, MlNode
from mlnode.service.pow import PowError, PowPhase
from mlnode.service.schema import (
    ErrorView,
    HealthView,
    InferenceUpRequest,
    OkView,
    PowView,
    StateView,
)
from mlnode.service.state import Conflict, NodeMode

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
# Paths served by the inference backend, and the methods they accept.
PROXIED = {
    "/v1/chat/completions": ["POST"],
    "/v1/completions": ["POST"],
    "/v1/models": ["GET"],
    "/tokenize": ["POST"],
    "/detokenize": ["POST"],
    "/health": ["GET"],
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, state: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.state = state


def _json(obj: object, status: int = 200) -> Response:
    return Response(to_json(obj), status=status, content_type="application/json")


def _error(status: int, message: str, state: str | None = None) -> Response:
    return _json(ErrorView(message, state), status)


def create_app(node: MlNode) -> QuartTrio:
    config = node.config
    app = QuartTrio("mlnode.service")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes

    @app.errorhandler(ApiError)
    async def on_api_error(e: ApiError) -> Response:
        return _error(e.status, e.message, e.state)

    @app.errorhandler(Conflict)
    async def on_conflict(e: Conflict) -> Response:
        return _error(409, e.reason, e.mode.value)

    @app.errorhandler(PowError)
    async def on_pow_error(e: PowError) -> Response:
        return _error(409, str(e), node.mode.value)

    @app.errorhandler(ValidationError)
    async def on_validation_error(e: ValidationError) -> Response:
        return _error(409, str(e), node.mode.value)

    @app.errorhandler(BackendError)
    async def on_backend_error(e: BackendError) -> Response:
        return _error(e.status, str(e), node.mode.value)

    @app.errorhandler(HTTPException)
    async def on_http_error(e: HTTPException) -> Response:
        return _error(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    async def on_unexpected(e: Exception) -> Response:
        log.exception("ML node handler failed")
        return _error(500, f"internal error: {type(e).__name__}: {e}")

    @app.before_request
    async def authenticate() -> Response | None:
        if config.auth_token is None:
            return None
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {config.auth_token}".encode()):
            return _error(401, "missing or wrong bearer token")
        return None

    async def body_as(type_: type):
        data = await request.get_data(as_text=False)
        try:
            return from_json(data, type_, max_size=config.max_body_bytes)
        except DecodeError as e:
            raise ApiError(400, str(e)) from None

    # -- node -----------------------------------------------------------------------------

    @app.get(f"{PREFIX}/state")
    async def get_state() -> Response:
        return _json(StateView(node.mode.value, node.status.failure))

    @app.post(f"{PREFIX}/stop")
    async def post_stop() -> Response:
        await node.stop()
        return _json(OkView())

    @app.get(f"{PREFIX}/health")
    async def get_health() -> Response:
        failure = node.status.failure
        return _json(HealthView(status="FAILED" if failure else "OK", state=node.mode.value,
                                failure=failure, pow=node.pow.status(),
                                inference_running=node.backend.is_running()))

    # -- PoC ------------------------------------------------------------------------------

    @app.post(f"{PREFIX}/pow/init/generate")
    async def pow_init_generate() -> Response:
        req = await body_as(PowInitRequest)
        return _json(PowView(await node.start_pow(req, PowPhase.GENERATING)))

    @app.post(f"{PREFIX}/pow/init/validate")
    async def pow_init_validate() -> Response:
        req = await body_as(PowInitRequest)
        return _json(PowView(await node.start_pow(req, PowPhase.VALIDATING)))

    @app.post(f"{PREFIX}/pow/phase/generate")
    async def pow_phase_generate() -> Response:
        return _json(PowView(await node.pow_phase(PowPhase.GENERATING)))

    @app.post(f"{PREFIX}/pow/phase/validate")
    async def pow_phase_validate() -> Response:
        return _json(PowView(await node.pow_phase(PowPhase.VALIDATING)))

    @app.post(f"{PREFIX}/pow/validate")
    async def pow_validate() -> Response:
        batch = await body_as(ProofBatch)
        return _json(await node.validate(batch))

    @app.get(f"{PREFIX}/pow/status")
    async def pow_status() -> Response:
        return _json(node.pow.status())

    @app.post(f"{PREFIX}/pow/stop")
    async def pow_stop() -> Response:
        return _json(PowView(await node.stop_pow()))

    # -- inference ------------------------------------------------------------------------

    @app.post(f"{PREFIX}/inference/up")
    async def inference_up() -> Response:
        req = await body_as(InferenceUpRequest)
        await node.inference_up(req)
        return _json(OkView())

    @app.post(f"{PREFIX}/inference/down")
    async def inference_down() -> Response:
        await node.inference_down()
        return _json(OkView())

    @app.post(f"{PREFIX}/inference/replay")
    async def inference_replay() -> Response:
        req = await body_as(node.backend.replay_request_type)
        return _json(await node.replay(req))

    def proxy_route(path: str):
        async def forward() -> Response:
            if node.mode is not NodeMode.INFERENCE or not node.backend.is_running():
                return _error(503, "no inference backend is running; POST "
                              "/api/v1/inference/up first", node.mode.value)
            return await node.backend.forward(request, path)
        forward.__name__ = "proxy" + path.replace("/", "_")
        return forward

    for path, methods in PROXIED.items():
        app.add_url_rule(path, view_func=proxy_route(path), methods=methods)

    return app
