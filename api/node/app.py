"""The API node's HTTP apps (Quart-trio): the public one and the two private ones (ML-node
callbacks, admin), each taking extra blueprints (the broker's, PoC orchestration's).

Public routes:
  POST /v1/chat/completions            the inference path: transfer agent (transfer.py), or
                                       executor when X-Inference-Id is present (executor.py)
  GET  /v1/chat/completions/{id}       the chain's record of inference {id} (hex)
  GET  /v1/status                      {address, chain_id, height, epoch, stage, public_url, ...}
  GET  /v1/models                      the effective epoch's models (OpenAI list shape)
  GET  /v1/pricing                     price per token of each model now
  GET  /v1/participants[/{address}]    participants with their URL, weight (and balance)
  POST /v1/participants                relays a host's registration: {"tx": base64 of a tx
                                       holding one MsgRegisterParticipant signed by the
                                       participant} -> 200 {address, inference_url, tx_hash,
                                       height} | 202 not included yet | 400 bad or refused
                                       (registration.py says why a signed tx)
  GET  /v1/epochs/{n|latest}           an epoch's group and stage heights, and the current stage
  GET  /v1/inference/{id}/payload      for the inference's validators: the request and response
                                       this node served as its executor (`PayloadView`); signed
                                       per api.signing's payload-request contract by the
                                       validator's account or warm key (grantee of
                                       validation/MsgValidation), within the chain's time window,
                                       by a member with weight of the inference's epoch group:
                                       401 bad signature or time, 403 not such a member, 404
                                       unknown id (or no longer kept)
Every error is OpenAI's shape (errors.py). The private apps answer GET /health and require
`Authorization: Bearer <token>` when they have a token.

Handlers translate between HTTP and the node; state changes only through the chain client.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Iterable

import httpx
import msgspec
from quart import Blueprint, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.node.context import ApiNode
from api.node.errors import (
    ApiError,
    BodyTooLarge,
    ChainUnavailable,
    NotAValidator,
    NotFound,
    Replay,
    StalePayloadRequest,
    Unauthorized,
    as_api_error,
    body_of,
    error_body,
)
from api.node.executor import open_execution
from api.node.registration import relay_registration
from api.node.transfer import Relay, handle_transfer
from api.signing import (
    INFERENCE_ID,
    VALIDATOR_ADDRESS,
    BadPayloadSignature,
    BadTransferSignature,
    RequestTimeError,
    check_timestamp,
    transfer_agent_of,
    verify_payload_request,
    verify_transfer,
)
from chain.crypto.address import address_to_bytes
from chain.crypto.errors import InvalidAddress
from chain.rpc.client import RpcError

log = logging.getLogger(__name__)


def _json(value: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status=status, content_type="application/json")


def _error_response(e: ApiError) -> Response:
    response = Response(body_of(e), status=e.status, content_type="application/json")
    for k, v in e.headers().items():
        response.headers[k] = v
    return response


def _install_errors(app: QuartTrio, node: ApiNode | None) -> None:
    @app.errorhandler(RequestEntityTooLarge)
    async def on_too_large(e: RequestEntityTooLarge) -> Response:
        limit = node.limits.max_body_bytes if node is not None else 0
        return _error_response(BodyTooLarge(limit))

    @app.errorhandler(HTTPException)
    async def on_http(e: HTTPException) -> Response:
        status = e.code or 500
        return Response(error_body(status, e.description or e.name, e.name.lower()
                                   .replace(" ", "_")), status=status,
                        content_type="application/json")

    @app.errorhandler(Exception)
    async def on_error(e: Exception) -> Response:
        snapshot = node.cache.snapshot if node is not None else None
        mapped = as_api_error(e, public_url=node.public_url if node else "",
                              block_time_s=snapshot.block_time_s if snapshot else 1.0)
        if mapped is None:
            if isinstance(e, (RpcError, httpx.HTTPError, OSError)):
                mapped = ChainUnavailable(str(e))
            else:
                log.exception("request failed")
                return Response(error_body(500, f"internal error: {type(e).__name__}: {e}",
                                           "internal_error"), status=500,
                                content_type="application/json")
        return _error_response(mapped)


def _bearer_guard(app: QuartTrio, token: str | None) -> None:
    if token is None:
        return

    @app.before_request
    async def authenticate() -> Response | None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error_response(Unauthorized("missing or wrong bearer token"))
        return None


def create_private_app(name: str, token: str | None, blueprints: Iterable[Blueprint] = (),
                       node: ApiNode | None = None) -> QuartTrio:
    app = QuartTrio(f"gonka-api-{name}")
    _bearer_guard(app, token)
    _install_errors(app, node)

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    for bp in blueprints:
        app.register_blueprint(bp)
    return app


def _relay_response(relay: Relay) -> Response:
    response = Response(relay.chunks, status=relay.status, content_type=relay.content_type)
    for k, v in relay.headers.items():
        response.headers[k] = v
    if relay.content_type.startswith("text/event-stream"):
        response.headers["Cache-Control"] = "no-cache"
    if not isinstance(relay.chunks, bytes):
        # A generation may stream for minutes; the read timeouts upstream bound silence instead.
        response.timeout = None
    return response


def create_public_app(node: ApiNode, blueprints: Iterable[Blueprint] = ()) -> QuartTrio:
    app = QuartTrio("gonka-api-public")
    app.config["MAX_CONTENT_LENGTH"] = node.limits.max_body_bytes
    _install_errors(app, node)

    async def read_body() -> bytes:
        length = request.content_length
        if length is not None and length > node.limits.max_body_bytes:
            raise BodyTooLarge(node.limits.max_body_bytes)
        return await request.get_data(cache=False, as_text=False)

    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        body = await read_body()
        headers = dict(request.headers.items())
        if request.headers.get(INFERENCE_ID):
            return await _execute(node, headers, body)
        return _relay_response(await handle_transfer(node, headers, body))

    @app.get("/v1/chat/completions/<inference_id>")
    async def inference_record(inference_id: str) -> Response:
        try:
            record = await node.rpc.query("inference/inference", id=inference_id)
        except RpcError as e:
            if e.code == "query_failed" and e.app_code == 3:
                raise NotFound(f"no inference {inference_id} on chain") from None
            if e.code == "query_failed" and e.app_code == 2:
                raise _BadId(inference_id) from None
            raise
        return _json(record)

    @app.get("/v1/status")
    async def status() -> Response:
        snapshot = node.cache.snapshot
        sender = node.sender.health
        return _json({
            "address": node.account, "signer": node.resolved.signer.address,
            "public_url": node.public_url,
            "chain_id": snapshot.chain_id if snapshot else None,
            "height": snapshot.height if snapshot else None,
            "chain_time_ns": snapshot.time_ns if snapshot else None,
            "epoch": snapshot.epoch.effective_epoch if snapshot else None,
            "stage": snapshot.epoch.stage if snapshot else None,
            "chain_state_error": node.cache.last_error or None,
            "tx_sender": {"ok": sender.ok, "last_error": sender.last_error or None},
        })

    @app.get("/v1/models")
    async def models() -> Response:
        snapshot = await node.cache.current()
        return _json({"object": "list", "data": [
            {"id": m.id, "object": "model", "created": 0, "owned_by": "gonka",
             "price_per_token": snapshot.prices.get(m.id, 0),
             "units_of_compute_per_token": m.units_of_compute_per_token,
             "validation_threshold_ppm": m.validation_threshold_ppm,
             "hf_repo": m.hf_repo, "hf_commit": m.hf_commit}
            for m in snapshot.models]})

    @app.get("/v1/pricing")
    async def pricing() -> Response:
        snapshot = await node.cache.current()
        # The dynamic per-token price is what inference costs; the unit-of-compute price is the
        # group's weighted median of its members' proposals, informational (PROTOCOL.md).
        return _json({"height": snapshot.height, "epoch": snapshot.epoch.effective_epoch,
                      "unit": "ngonka per token",
                      "unit_of_compute_price": snapshot.group.get("group", {}).get(
                          "unit_of_compute_price"),
                      "models": [{"id": m.id, "price_per_token": snapshot.prices.get(m.id, 0),
                                  "units_of_compute_per_token": m.units_of_compute_per_token}
                                 for m in snapshot.models]})

    def weights() -> dict[str, int]:
        snapshot = node.cache.snapshot
        return {m["address"]: m["weight"] for m in snapshot.members} if snapshot else {}

    @app.get("/v1/participants")
    async def participants() -> Response:
        snapshot = await node.cache.current()
        w = weights()
        return _json({"height": snapshot.height, "epoch": snapshot.epoch.effective_epoch,
                      "participants": [
                          {"address": p.address, "inference_url": p.inference_url,
                           "status": p.status, "weight": w.get(p.address, 0)}
                          for p in sorted(snapshot.participants.values(),
                                          key=lambda p: p.address)]})

    @app.post("/v1/participants")
    async def register_participant() -> Response:
        registered = await relay_registration(node, await read_body())
        return _json(registered, 200 if registered.height is not None else 202)

    @app.get("/v1/participants/<address>")
    async def participant(address: str) -> Response:
        snapshot = await node.cache.current()
        p = snapshot.participants.get(address)
        if p is None:
            raise NotFound(f"{address} is not a participant")
        return _json({"address": p.address, "inference_url": p.inference_url,
                      "status": p.status, "weight": weights().get(address, 0),
                      "balance": await node.balance(address)})

    @app.get("/v1/epochs/<which>")
    async def epoch(which: str) -> Response:
        snapshot = await node.cache.current()
        if which in ("latest", "current"):
            index = snapshot.epoch.effective_epoch
        elif which.isdecimal():
            index = int(which)
        else:
            raise _BadEpoch(which)
        try:
            group = await node.rpc.query("epochs/group", epoch=str(index))
        except RpcError as e:
            if e.code == "query_failed" and e.app_code in (2, 3):
                raise NotFound(f"no epoch {index} on chain") from None
            raise
        return _json({"height": snapshot.height, "epoch": index,
                      "effective_epoch": snapshot.epoch.effective_epoch,
                      "stage": snapshot.epoch.stage,
                      "poc": msgspec.to_builtins(snapshot.epoch.poc),
                      "group": group.get("group"), "members": group.get("members")})

    @app.get("/v1/inference/<inference_id>/payload")
    async def payload(inference_id: str) -> Response:
        return _json(await _payload(node, inference_id, dict(request.headers.items())))

    for bp in blueprints:
        app.register_blueprint(bp)
    return app


class PayloadView(msgspec.Struct, frozen=True):
    """What an executor served, for the inference's validators to re-execute and compare."""

    inference_id: str        # hex
    epoch: int
    model: str
    request: str             # base64: the developer's body, byte for byte
    response: str            # base64: the bytes whose BLAKE3-256 is the chain's response_hash
    response_hash: str       # hex
    prompt_tokens: int
    completion_tokens: int
    streamed: bool           # `response` is the recorded SSE stream, not one JSON object


def _inference_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise _BadId(text) from None
    if len(raw) != 64:
        raise _BadId(text)
    return raw


async def _payload(node: ApiNode, id_text: str, headers: dict[str, str]) -> PayloadView:
    inference_id = _inference_id(id_text)
    claimed = next((v.strip() for k, v in headers.items()
                    if k.lower() == VALIDATOR_ADDRESS.lower()), "")
    try:
        address_to_bytes(claimed)
    except InvalidAddress:
        claimed = ""   # verify_payload_request names the header's problem
    keys = await node.validator_keys.pubkeys(claimed) if claimed else ()
    try:
        asked = verify_payload_request(headers, inference_id, keys)
    except BadPayloadSignature:
        if not claimed:
            raise
        # A warm key granted since the keys were read: look again once.
        keys = await node.validator_keys.pubkeys(claimed, fresh=True)
        asked = verify_payload_request(headers, inference_id, keys)
    snapshot = await node.cache.current()
    try:
        check_timestamp(asked.timestamp_ns, snapshot.time_ns, snapshot.params.max_request_age_s,
                        snapshot.params.max_request_advance_s)
    except RequestTimeError as e:
        raise StalePayloadRequest(e) from None
    stored = node.payloads.get(inference_id)
    if stored is None:
        raise NotFound(f"this node holds no payload of inference {id_text[:16]}... (it was "
                       "not its executor, or the payload is past its keeping)")
    weight = await node.member_weight(stored.epoch, asked.validator)
    if not weight:
        raise NotAValidator(asked.validator, stored.epoch)
    return PayloadView(
        inference_id=stored.inference_id.hex(), epoch=stored.epoch, model=stored.model,
        request=base64.b64encode(stored.request).decode(),
        response=base64.b64encode(stored.response).decode(),
        response_hash=stored.response_hash.hex(), prompt_tokens=stored.prompt_tokens,
        completion_tokens=stored.completion_tokens, streamed=stored.streamed)


class _BadId(ApiError):
    status, code = 400, "bad_inference_id"

    def __init__(self, given: str) -> None:
        super().__init__(f"{given!r} is not an inference id (128 hex characters, as "
                         "completions' `id` gives it)")


class _BadEpoch(ApiError):
    status, code = 400, "bad_epoch"

    def __init__(self, given: str) -> None:
        super().__init__(f"{given!r} is not an epoch: a number or `latest`")


async def _execute(node: ApiNode, headers: dict[str, str], body: bytes) -> Response:
    snapshot = await node.cache.current()
    transfer_agent = transfer_agent_of(headers)
    keys = await node.ta_keys.pubkeys(transfer_agent)
    try:
        transfer = verify_transfer(headers, body, node.account, keys)
    except BadTransferSignature:
        # A warm key granted since the keys were read: look again once.
        keys = await node.ta_keys.pubkeys(transfer_agent, fresh=True)
        transfer = verify_transfer(headers, body, node.account, keys)
    params = snapshot.params
    check_timestamp(transfer.request.timestamp_ns, snapshot.time_ns, params.max_request_age_s,
                    params.max_request_advance_s)
    if not node.replay.add(transfer.inference_id, "executor", transfer.request.timestamp_ns):
        raise Replay(transfer.inference_id, "executor")
    execution = await open_execution(node, transfer, body)
    return _relay_response(Relay(
        200, execution.content_type,
        execution.chunks() if execution.streamed else execution.developer_body, {}))
