"""The host's admin routes that speak for it on chain (gonka-api-node.md section 3), as a Quart
blueprint the API node mounts on its admin server (never on the public one), beside the broker's
ML-node routes (api/broker/admin.py):

    POST /admin/v1/unit-of-compute-price-proposal   <- {price, denom} -> 200 PriceProposed
         (denom ngonka | ugonka | mgonka | gonka; the price is sent in ngonka as
         MsgSubmitUnitOfComputePriceProposal)
    GET  /admin/v1/unit-of-compute-price-proposal   -> 200 the chain's record of this host's
         latest proposal {participant, price (ngonka), height, epoch} | 404 none on chain
    POST /admin/v1/models                           <- ModelProposalBody -> 200 ModelProposed:
         a governance MsgSubmitProposal setting `models.models` to the current registry with
         this model added (or replaced, same id), deposit = the gov params' `min_deposit`,
         title "<id> model proposal"

A message goes through the node's outbox and tx sender, signed as the host (by a warm key under
the account's authz grant for that message type), and the route waits up to SETTLE_WAIT_S for
the chain's verdict: included -> 200, refused -> 422 {error, code, tx_hash}, no verdict yet ->
202 {message_id, state} (the sender keeps trying; the chain's queries tell the outcome later).
Bad input -> 400 {"error": "invalid body: ..."} and nothing is sent; the chain unreadable -> 503.
Errors are {"error": message} (api.jsonhttp), as on the broker's routes.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
import msgspec
import trio
from quart import Blueprint, Response

from api.chain.sender import Settlement
from api.jsonhttp import BadBody, answer_bad_bodies, error_response, json_response, read_body
from api.node.context import ApiNode
from chain.app.models.params import ModelSpec
from chain.rpc.client import RpcError
from chain.rpc.schema import TxView
from chain.types.codec import DecodeError, validated
from chain.types.common import MAX_AMOUNT
from chain.types.msgs import (
    BaseMsg,
    MsgExec,
    MsgSubmitProposal,
    MsgSubmitUnitOfComputePriceProposal,
)
from chain.types.msgs.params import ParamChange
from chain.types.tx import decode_tx

PRICE_PATH = "/admin/v1/unit-of-compute-price-proposal"
MODELS_PATH = "/admin/v1/models"
MAX_BODY = 64 * 1024
# How long a route waits for the chain's verdict before answering 202 (a few blocks on mainnet).
SETTLE_WAIT_S = 60.0

DENOMS = {"ngonka": 1, "ugonka": 10**3, "mgonka": 10**6, "gonka": 10**9}
Denom = Literal["ngonka", "ugonka", "mgonka", "gonka"]


class PriceProposalBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    price: Annotated[int, msgspec.Meta(ge=1)]
    denom: Denom

    def ngonka(self) -> int:
        amount = self.price * DENOMS[self.denom]
        if amount > MAX_AMOUNT:
            raise BadBody(f"{self.price} {self.denom} is {amount} ngonka, more than the chain's "
                          f"largest amount ({MAX_AMOUNT})")
        return amount


class ModelProposalBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model as the registry will hold it: the chain's ModelSpec fields (its constraints and
    defaults apply), `id` and `units_of_compute_per_token` required; `description` is the
    proposal's."""

    id: str
    units_of_compute_per_token: int
    hf_repo: str = ""
    hf_commit: str = ""
    throughput_per_nonce: int | None = None
    validation_threshold_ppm: int | None = None
    base_per_token_price: int | None = None
    min_per_token_price: int | None = None
    description: str = ""

    def spec(self) -> ModelSpec:
        fields = {k: v for k, v in msgspec.structs.asdict(self).items()
                  if v is not None and k != "description"}
        try:
            spec = msgspec.convert(fields, ModelSpec)
            spec.validate()
        except (msgspec.ValidationError, ValueError) as e:
            raise BadBody(str(e)) from None
        return spec


class PriceProposed(msgspec.Struct, frozen=True):
    participant: str
    price: int              # ngonka
    tx_hash: str | None
    height: int | None
    message_id: int


class ModelProposed(msgspec.Struct, frozen=True):
    proposal_id: int | None
    title: str
    deposit: int            # ngonka
    models: list[ModelSpec]  # the registry the proposal would set
    tx_hash: str | None
    height: int | None
    message_id: int


class Pending(msgspec.Struct, frozen=True):
    message_id: int
    state: str
    note: str = ("the chain has not included or refused the message yet; the node keeps "
                 "sending it")


class TxRefused(msgspec.Struct, frozen=True):
    error: str
    code: int
    tx_hash: str | None


class AlreadyRegistered(Exception):
    """The registry already holds the model exactly as proposed."""


def with_model(current: list[ModelSpec], spec: ModelSpec) -> list[ModelSpec]:
    """The registry with `spec` added, or replacing the model of the same id, sorted by id."""
    if spec in current:
        raise AlreadyRegistered(f"the registry already holds {spec.id} exactly as given")
    return sorted([m for m in current if m.id != spec.id] + [spec], key=lambda m: m.id)


def proposal_id_in(view: TxView, msg: MsgSubmitProposal) -> int | None:
    """The id the chain gave `msg` in the tx of `view`: each MsgSubmitProposal of a tx emits one
    `submit_proposal` event, in message order (inner messages of a MsgExec in place)."""
    flat: list[BaseMsg] = []
    for m in decode_tx(view.tx).body.messages:
        flat.extend(m.msgs if isinstance(m, MsgExec) else (m,))
    proposals = [m for m in flat if isinstance(m, MsgSubmitProposal)]
    ids = [int(a.value) for e in view.result.events if e.type == "submit_proposal"
           for a in e.attributes if a.key == "proposal_id"]
    return next((pid for m, pid in zip(proposals, ids, strict=False) if m == msg), None)


def node_admin_blueprint(node: ApiNode) -> Blueprint:
    bp = Blueprint("node_admin", __name__)

    answer_bad_bodies(bp)

    @bp.errorhandler(AlreadyRegistered)
    async def on_already(e: AlreadyRegistered) -> Response:
        return error_response(409, str(e))

    @bp.errorhandler(RpcError)
    async def on_rpc(e: RpcError) -> Response:
        return error_response(503, f"the chain cannot be read right now: {e}")

    @bp.errorhandler(httpx.HTTPError)
    async def on_http(e: httpx.HTTPError) -> Response:
        return error_response(503, f"the chain cannot be reached right now: {e}")

    async def send(msg: BaseMsg) -> tuple[int, Settlement | None]:
        try:
            validated(msg)
        except DecodeError as e:
            raise BadBody(e.reason) from None
        message_id = node.sender.submit(msg)
        with trio.move_on_after(SETTLE_WAIT_S):
            return message_id, await node.sender.wait_settled(message_id)
        return message_id, None

    def unsettled(message_id: int, settled: Settlement | None) -> Response | None:
        """The answer when `settled` is no inclusion (None when it is one)."""
        if settled is None:
            entry = node.sender.outbox.get(message_id)
            return json_response(Pending(message_id, entry.state if entry else "unknown"), 202)
        if settled.state != "included":
            return json_response(TxRefused(f"the chain refused the message: {settled.log}",
                                           settled.code, settled.tx_hash), 422)
        return None

    @bp.post(PRICE_PATH)
    async def propose_price() -> Response:
        body = await read_body(PriceProposalBody, MAX_BODY)
        price = body.ngonka()
        message_id, settled = await send(MsgSubmitUnitOfComputePriceProposal(
            participant=node.account, price=price))
        if (answer := unsettled(message_id, settled)) is not None:
            return answer
        assert settled is not None
        return json_response(PriceProposed(node.account, price, settled.tx_hash, settled.height,
                                           message_id))

    @bp.get(PRICE_PATH)
    async def current_price() -> Response:
        try:
            record = await node.rpc.query("epochs/unit_of_compute_price_proposal",
                                          participant=node.account)
        except RpcError as e:
            if e.code == "query_failed" and e.app_code == 3:
                return error_response(404, f"{node.account} has no unit-of-compute price "
                                      "proposal on chain")
            raise
        return json_response(record)

    @bp.post(MODELS_PATH)
    async def propose_model() -> Response:
        body = await read_body(ModelProposalBody, MAX_BODY)
        spec = body.spec()
        current = await node.rpc.query("models/all", as_type=list[ModelSpec])
        models = with_model(current, spec)
        gov = await node.rpc.query("params/gov")
        deposit = int(gov["min_deposit"])
        replaced = any(m.id == spec.id for m in current)
        title = f"{spec.id} model proposal"
        msg = MsgSubmitProposal(
            proposer=node.account, title=title, initial_deposit=deposit,
            description=body.description or (f"{'Updates' if replaced else 'Adds'} {spec.id} "
                                             f"{'in' if replaced else 'to'} the model registry"),
            changes=(ParamChange(module="models", key="models",
                                 value=msgspec.json.encode(models).decode()),))
        message_id, settled = await send(msg)
        if (answer := unsettled(message_id, settled)) is not None:
            return answer
        assert settled is not None and settled.tx_hash is not None
        view = await node.rpc.tx(settled.tx_hash)
        return json_response(ModelProposed(
            proposal_id=proposal_id_in(view, msg) if view is not None else None, title=title,
            deposit=deposit, models=models, tx_hash=settled.tx_hash, height=settled.height,
            message_id=message_id))

    return bp
