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
from quart import Blueprint, Response

from api.jsonhttp import answer_bad_bodies, error_response, json_response, read_body
from api.poc.orchestrator import CALLBACK_PREFIX, PROOFS_PATH, PocOrchestrator, PocServiceError
from api.poc.proofs import PocProofRequest, PositionOutOfRange
from chain.rpc.client import RpcError
from chain.types.poc import ProofBatch, ValidatedBatch

# A full ProofBatch of MAX_BATCH_NONCES nonces is ~40 MB of JSON; ML nodes send far less.
MAX_CALLBACK_BYTES = 64 << 20
MAX_PROOF_REQUEST_BYTES = 1 << 20


def _common_errors(bp: Blueprint) -> None:
    answer_bad_bodies(bp)

    @bp.errorhandler(PocServiceError)
    async def on_refused(e: PocServiceError) -> Response:
        return error_response(e.status, str(e))

    @bp.errorhandler(RpcError)
    async def on_chain(e: RpcError) -> Response:
        return error_response(503, f"the chain cannot be read now: {e.message}")

    @bp.errorhandler(httpx.HTTPError)
    async def on_chain_down(e: httpx.HTTPError) -> Response:
        return error_response(503, f"the chain cannot be read now: {type(e).__name__}")


def callbacks_blueprint(orchestrator: PocOrchestrator) -> Blueprint:
    bp = Blueprint("poc_callbacks", __name__)
    _common_errors(bp)

    @bp.post(f"{CALLBACK_PREFIX}/generated")
    async def generated() -> Response:
        batch = await read_body(ProofBatch, MAX_CALLBACK_BYTES)
        merge = await orchestrator.accept_batch(batch)
        return json_response(dataclasses.asdict(merge))

    @bp.post(f"{CALLBACK_PREFIX}/validated")
    async def validated() -> Response:
        await read_body(ValidatedBatch, MAX_CALLBACK_BYTES)
        return json_response({})

    return bp


def poc_proofs_blueprint(orchestrator: PocOrchestrator) -> Blueprint:
    bp = Blueprint("poc_proofs", __name__)
    _common_errors(bp)

    @bp.errorhandler(PositionOutOfRange)
    async def on_out_of_range(e: PositionOutOfRange) -> Response:
        return error_response(400, str(e))

    @bp.post(PROOFS_PATH)
    async def proofs() -> Response:
        req = await read_body(PocProofRequest, MAX_PROOF_REQUEST_BYTES)
        return json_response(await orchestrator.proofs(req))

    return bp
