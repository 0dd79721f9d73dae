"""The PoC HTTP endpoints of the API node, as Quart blueprints over a `PocOrchestrator`:

`callbacks_blueprint` (the callbacks server, reachable from this host's ML nodes only):
    POST /poc/generated   <- ProofBatch -> 200 {"added", "duplicates", "conflicts", "refused"}
                             400 bad body, 422 a batch of another PoC (the ML node drops it),
                             503 no session for its height yet (the ML node retries)
    POST /poc/validated   <- ValidatedBatch -> 200 (verdicts come from /pow/validate's answer;
                             the ML node's copy is accepted and ignored)
`poc_proofs_blueprint` (public):
    POST /v1/poc/proofs   <- PocProofRequest -> PocProofResponse of the commit the chain holds;
                             400 bad body or a position outside the committed list, 404 no
                             commit (or no list for it), 503 the chain cannot be read now

Errors are {"error": message}. Handlers translate HTTP to orchestrator calls and hold no state.
"""

from __future__ import annotations

import dataclasses

import httpx
import msgspec
from quart import Blueprint, Response, request

from api.poc.orchestrator import CALLBACK_PREFIX, PROOFS_PATH, PocOrchestrator, PocServiceError
from api.poc.proofs import PocProofRequest, PositionOutOfRange
from chain.rpc.client import RpcError
from chain.types.poc import ProofBatch, ValidatedBatch

# A full ProofBatch of MAX_BATCH_NONCES nonces is ~40 MB of JSON; ML nodes send far less.
MAX_CALLBACK_BYTES = 64 << 20
MAX_PROOF_REQUEST_BYTES = 1 << 20


class ErrorBody(msgspec.Struct, frozen=True):
    error: str


def _json(obj: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status=status, content_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json(ErrorBody(message), status)


class _BadBody(Exception):
    pass


async def _body(type_: type, limit: int):
    data = await request.get_data(as_text=False)
    if len(data) > limit:
        raise _BadBody(f"body over {limit} bytes")
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.DecodeError as e:
        raise _BadBody(str(e)) from None


def _common_errors(bp: Blueprint) -> None:
    @bp.errorhandler(_BadBody)
    async def on_bad_body(e: _BadBody) -> Response:
        return _error(400, f"invalid body: {e}")

    @bp.errorhandler(PocServiceError)
    async def on_refused(e: PocServiceError) -> Response:
        return _error(e.status, str(e))

    @bp.errorhandler(RpcError)
    async def on_chain(e: RpcError) -> Response:
        return _error(503, f"the chain cannot be read now: {e.message}")

    @bp.errorhandler(httpx.HTTPError)
    async def on_chain_down(e: httpx.HTTPError) -> Response:
        return _error(503, f"the chain cannot be read now: {type(e).__name__}")


def callbacks_blueprint(orchestrator: PocOrchestrator) -> Blueprint:
    bp = Blueprint("poc_callbacks", __name__)
    _common_errors(bp)

    @bp.post(f"{CALLBACK_PREFIX}/generated")
    async def generated() -> Response:
        batch = await _body(ProofBatch, MAX_CALLBACK_BYTES)
        merge = await orchestrator.accept_batch(batch)
        return _json(dataclasses.asdict(merge))

    @bp.post(f"{CALLBACK_PREFIX}/validated")
    async def validated() -> Response:
        await _body(ValidatedBatch, MAX_CALLBACK_BYTES)
        return _json({})

    return bp


def poc_proofs_blueprint(orchestrator: PocOrchestrator) -> Blueprint:
    bp = Blueprint("poc_proofs", __name__)
    _common_errors(bp)

    @bp.errorhandler(PositionOutOfRange)
    async def on_out_of_range(e: PositionOutOfRange) -> Response:
        return _error(400, str(e))

    @bp.post(PROOFS_PATH)
    async def proofs() -> Response:
        req = await _body(PocProofRequest, MAX_PROOF_REQUEST_BYTES)
        return _json(await orchestrator.proofs(req))

    return bp
