"""The epochs module as the app sees it: genesis epoch 0, seed commitments, unit-of-compute
price proposals, the epoch clock.

Queries:
    epochs/current [at_height] -> EpochInfo: effective and upcoming epoch, the stage heights of the
                                running (or next) PoC, and the stage of `at_height` when given
                                (`height` is the RPC's own parameter: which state to read)
    epochs/group {epoch}     -> GroupView: the group (weights, per-model weights, snapshot,
                                unit-of-compute price) and its members
    epochs/unit_of_compute_price_proposal {participant}
                             -> UnitOfComputePriceProposal: its latest proposal (not found if
                                it never proposed)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from chain.app.context import Context, Module
from chain.app.epochs import state, unit_price
from chain.app.epochs.handlers import HANDLERS
from chain.app.epochs.transitions import end_block
from chain.app.errors import NotFound
from chain.app.queryparams import address_param, int_param
from chain.store.kv import KVReader


def init_genesis(ctx: Context, genesis: Any) -> None:
    """Epoch 0 (PoC start 0, effective now): its group is the genesis validators with their
    power as weight; it serves no models."""
    state.put_epoch(ctx.store, state.Epoch(index=0, poc_start=0))
    state.set_effective_epoch(ctx.store, 0)
    by_operator: dict[str, state.GroupMember] = {}
    for v in genesis.validators:
        # An operator of several genesis validators is one member (with the first key).
        old = by_operator.get(v.operator)
        weight = v.power + (old.weight if old else 0)
        by_operator[v.operator] = state.GroupMember(
            address=v.operator, weight=weight, reputation=0,
            validator_key=old.validator_key if old else v.pubkey)
    for member in by_operator.values():
        state.put_member(ctx.store, 0, member)
    total, per_model = state.totals(by_operator.values())
    price = state.epoch_params(ctx.store).default_unit_of_compute_price
    state.put_group(ctx.store, state.EpochGroup(epoch=0, poc_start=0, formed_height=0,
                                                total_weight=total, model_weights=per_model,
                                                unit_of_compute_price=price))


class EpochInfo(msgspec.Struct, frozen=True):
    effective_epoch: int
    effective_poc_start: int
    upcoming_epoch: int | None
    # Stages of the upcoming epoch's PoC, or of the next one (predicted from current params).
    poc: state.Stages
    stage: str | None = None


class GroupView(msgspec.Struct, frozen=True):
    group: state.EpochGroup
    members: list[state.GroupMember]


def query_current(store: KVReader, params: Mapping[str, str]) -> EpochInfo:
    effective = state.effective_epoch(store)
    epoch = state.get_epoch(store, effective)
    upcoming = state.upcoming_epoch(store)
    start = upcoming.poc_start if upcoming else state.next_poc_start(store)
    stages = state.stages(state.epoch_params(store), start)
    stage = None
    if "at_height" in params:
        stage = state.stage_name(stages, int_param(params, "at_height"))
    return EpochInfo(effective_epoch=effective,
                     effective_poc_start=epoch.poc_start if epoch else 0,
                     upcoming_epoch=upcoming.index if upcoming else None, poc=stages, stage=stage)


def query_group(store: KVReader, params: Mapping[str, str]) -> GroupView:
    index = int_param(params, "epoch")
    group = state.get_group(store, index)
    if group is None:
        raise NotFound(f"epoch {index} has no group (yet)")
    return GroupView(group=group, members=state.members(store, index))


def query_price_proposal(store: KVReader, params: Mapping[str, str]
                         ) -> unit_price.UnitOfComputePriceProposal:
    address = address_param(params, "participant")
    proposal = unit_price.get_proposal(store, address)
    if proposal is None:
        raise NotFound(f"{address} has proposed no unit-of-compute price")
    return proposal


MODULE = Module(name="epochs", handlers=HANDLERS, end_block=end_block, init_genesis=init_genesis,
                queries={"current": query_current, "group": query_group,
                         "unit_of_compute_price_proposal": query_price_proposal})
