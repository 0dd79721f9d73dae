"""Queries of the inference module (read committed state only).

    inference/inference {id: hex}  -> InferenceRecord
    inference/prices               -> [{model, price, precise_price}] for the effective epoch's
                                      models, by id: `price` is the whole-ngonka price per token
                                      a new inference locks in and is charged, `precise_price`
                                      the dynamic price in millionths of a ngonka it is the
                                      floor of
    inference/epoch {epoch}        -> [InferenceRecord] completed in that epoch, by id
    inference/invariants           -> {open_escrow, module_balance, holds}: the "inference"
                                      module account holds exactly the open records' escrow
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from chain.app.auth.state import module_address
from chain.app.bank import state as bank
from chain.app.epochs import state as epochs
from chain.app.errors import BadQuery, NotFound
from chain.app.inference import state
from chain.app.inference.pricing import PRICE_SCALE, precise_price
from chain.app.queryparams import int_param
from chain.store.kv import KVReader


class ModelPrice(msgspec.Struct, frozen=True):
    model: str
    price: int              # ngonka per token: what a new inference is charged
    precise_price: int      # millionths of a ngonka per token (price = precise_price // 10**6)


class Invariants(msgspec.Struct, frozen=True):
    open_escrow: int
    module_balance: int
    holds: bool


def query_inference(store: KVReader, params: Mapping[str, str]) -> state.InferenceRecord:
    text = params.get("id")
    if text is None:
        raise BadQuery("parameter 'id' is required")
    try:
        inference_id = bytes.fromhex(text)
    except ValueError:
        raise BadQuery(f"parameter 'id' is not hex: {text!r}") from None
    if len(inference_id) != 64:
        raise BadQuery(f"an inference id is 64 bytes, got {len(inference_id)}")
    record = state.get_inference(store, inference_id)
    if record is None:
        raise NotFound(f"no inference {text[:16]}...")
    return record


def query_prices(store: KVReader, params: Mapping[str, str]) -> list[ModelPrice]:
    group = epochs.get_group(store, epochs.effective_epoch(store))
    if group is None:
        return []
    out = []
    for spec in sorted(group.models, key=lambda m: m.id):
        precise = precise_price(store, spec)
        out.append(ModelPrice(model=spec.id, price=precise // PRICE_SCALE, precise_price=precise))
    return out


def query_epoch(store: KVReader, params: Mapping[str, str]) -> list[state.InferenceRecord]:
    return state.completed_in_epoch(store, int_param(params, "epoch"))


def query_invariants(store: KVReader, params: Mapping[str, str]) -> Invariants:
    open_escrow = state.open_escrow_total(store)
    balance = bank.balance(store, module_address("inference"))
    return Invariants(open_escrow=open_escrow, module_balance=balance,
                      holds=open_escrow == balance)


QUERIES = {"inference": query_inference, "prices": query_prices, "epoch": query_epoch,
           "invariants": query_invariants}
