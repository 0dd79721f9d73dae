"""State of the epochs module: epochs, their stage heights, epoch groups and seed commitments.

Keys:
    epochs/effective                         -> u64 index of the effective epoch
    epochs/epoch/<u64 index>                 -> Epoch (created at its PoC start)
    epochs/group/<u64 index>                 -> EpochGroup (created when the group forms)
    epochs/member/<u64 index>/<address>      -> GroupMember
    epochs/seed/<u64 index>/<address>        -> 32-byte seed commitment
    epochs/uoc_proposal/<address>            -> unit-of-compute price proposal (unit_price.py)

Epoch 0 is genesis: its group is the genesis validators, it has no PoC and no models. Epoch E+1
is created at its PoC start, its group forms at the end of its PoC validation, and it becomes the
effective epoch at its set-new-validators height; until then epoch E stays effective (inferences
are attributed to, validated in and settled with the effective epoch).

Stage heights are always recomputed from the stored PoC start and the *current* params, so a
governance change of the epoch params applies from the next stage on.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from chain.app.context import Context, get_int, get_value, put_int, put_value, u64
from chain.app.epochs.params import EpochParams
from chain.app.models.params import ModelSpec
from chain.app.params.state import get_params
from chain.app.validators.state import Validator, set_validator
from chain.store.kv import KVReader, Overlay, scan_prefix

EFFECTIVE = b"epochs/effective"
EPOCH = b"epochs/epoch/"
GROUP = b"epochs/group/"
MEMBER = b"epochs/member/"
SEED = b"epochs/seed/"


class Epoch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: int
    poc_start: int


class Stages(msgspec.Struct, frozen=True):
    """Heights of one epoch's PoC stages (all inclusive unless named *_end_exclusive)."""

    poc_start: int
    sprint_end_exclusive: int       # generation runs in [poc_start, sprint_end_exclusive)
    commit_deadline: int            # commits and seeds accepted in [poc_start + 1, this]
    validation_start: int           # PoC validations accepted in [validation_start,
    validation_end: int             #  validation_end]; the group forms at the end of the last
    set_new_validators: int         # the epoch becomes effective at the end of this block
    claim: int                      # the previous epoch's rewards can be claimed from here
    next_poc_start: int


def stages(params: EpochParams, poc_start: int) -> Stages:
    sprint_end = poc_start + params.sprint_blocks
    commit_deadline = sprint_end + params.exchange_blocks
    validation_end = commit_deadline + params.validation_blocks
    set_new_validators = validation_end + params.set_new_validators_delay
    return Stages(poc_start=poc_start, sprint_end_exclusive=sprint_end,
                  commit_deadline=commit_deadline, validation_start=commit_deadline + 1,
                  validation_end=validation_end, set_new_validators=set_new_validators,
                  claim=set_new_validators + 1, next_poc_start=poc_start + params.epoch_length)


def stage_name(s: Stages, height: int) -> str:
    """The stage of `height` within the PoC of `s` ("inference" outside it)."""
    if s.poc_start <= height < s.sprint_end_exclusive:
        return "sprint"
    if height <= s.commit_deadline and height >= s.poc_start:
        return "commit_exchange"
    if s.validation_start <= height <= s.validation_end:
        return "poc_validation"
    if s.validation_end < height <= s.set_new_validators:
        return "set_new_validators"
    return "inference"


class NodeWeight(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ML node of a member in an epoch: the model it is assigned to ("" if none), its share
    of the member's weight, and whether it keeps serving inference through the next PoC (then
    its weight carries over into the next epoch without mining)."""

    node_id: str
    model: str
    weight: int
    poc_slot: bool


class GroupMember(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    address: str
    weight: int                     # capped, collateral-adjusted PoC weight; 0 once removed
    reputation: int                 # 0..100, fixed when the group forms
    validator_key: bytes
    models: tuple[str, ...] = ()    # models it serves this epoch (sub-group memberships)
    ml_nodes: tuple[NodeWeight, ...] = ()
    seed_commitment: bytes = b""
    removed: str = ""               # why its weight was set to 0 mid-epoch ("" if not)


class ModelWeight(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str
    total_weight: int


class EpochGroup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epoch: int
    poc_start: int
    formed_height: int
    effective_height: int = 0       # 0 until the epoch becomes effective
    last_height: int = 0            # 0 while it is effective or upcoming
    total_weight: int = 0
    model_weights: tuple[ModelWeight, ...] = ()
    models: tuple[ModelSpec, ...] = ()  # registry snapshot at formation (sub-groups' models)
    number_of_requests: int = 0     # inferences completed while this epoch was effective
    previous_epoch_requests: int = 0
    # ngonka per unit of compute: the members' weighted median proposal, fixed at formation
    # (epochs.unit_price; informational, no cost uses it yet)
    unit_of_compute_price: int = 0


# -- epochs ----------------------------------------------------------------------------------

def epoch_params(store: KVReader) -> EpochParams:
    return get_params(store, "epochs", EpochParams)


def effective_epoch(store: KVReader) -> int:
    return get_int(store, EFFECTIVE)


def set_effective_epoch(store: Overlay, index: int) -> None:
    put_int(store, EFFECTIVE, index)


def get_epoch(store: KVReader, index: int) -> Epoch | None:
    return get_value(store, EPOCH + u64(index), Epoch)


def put_epoch(store: Overlay, epoch: Epoch) -> None:
    put_value(store, EPOCH + u64(epoch.index), epoch)


def upcoming_epoch(store: KVReader) -> Epoch | None:
    """The epoch whose PoC has started but which is not yet effective, if any."""
    return get_epoch(store, effective_epoch(store) + 1)


def epoch_stages(store: KVReader, index: int) -> Stages | None:
    """Stage heights of epoch `index` (None for epoch 0 and for epochs not yet started)."""
    epoch = get_epoch(store, index)
    if epoch is None or index == 0:
        return None
    return stages(epoch_params(store), epoch.poc_start)


def next_poc_start(store: KVReader) -> int:
    """Height at which the PoC of the epoch after the effective one starts."""
    params = epoch_params(store)
    effective = effective_epoch(store)
    if effective == 0:
        return params.first_poc_start
    epoch = get_epoch(store, effective)
    assert epoch is not None
    return epoch.poc_start + params.epoch_length


# -- groups ----------------------------------------------------------------------------------

def get_group(store: KVReader, index: int) -> EpochGroup | None:
    return get_value(store, GROUP + u64(index), EpochGroup)


def put_group(store: Overlay, group: EpochGroup) -> None:
    put_value(store, GROUP + u64(group.epoch), group)


def get_member(store: KVReader, index: int, address: str) -> GroupMember | None:
    return get_value(store, MEMBER + u64(index) + address.encode(), GroupMember)


def put_member(store: Overlay, index: int, member: GroupMember) -> None:
    put_value(store, MEMBER + u64(index) + member.address.encode(), member)


def members(store: KVReader, index: int) -> list[GroupMember]:
    """Every member of epoch `index`'s group (weight 0 ones included), sorted by address."""
    return [msgspec.msgpack.decode(v, type=GroupMember)
            for _, v in scan_prefix(store, MEMBER + u64(index))]


def weights(store: KVReader, index: int) -> dict[str, int]:
    """address -> weight of the members of epoch `index` with weight > 0."""
    return {m.address: m.weight for m in members(store, index) if m.weight > 0}


def model_members(store: KVReader, index: int, model: str) -> list[GroupMember]:
    """The model sub-group: members with weight > 0 that serve `model` in epoch `index`."""
    return [m for m in members(store, index) if m.weight > 0 and model in m.models]


def model_weight(group: EpochGroup, model: str) -> int:
    return next((w.total_weight for w in group.model_weights if w.model == model), 0)


def model_snapshot(group: EpochGroup, model: str) -> ModelSpec | None:
    return next((m for m in group.models if m.id == model), None)


def totals(all_members: Iterable[GroupMember]) -> tuple[int, tuple[ModelWeight, ...]]:
    """Total weight and per-model weights of `all_members`."""
    total = 0
    per_model: dict[str, int] = {}
    for m in all_members:
        total += m.weight
        for model in m.models:
            per_model[model] = per_model.get(model, 0) + m.weight
    return total, tuple(ModelWeight(model=k, total_weight=per_model[k])
                        for k in sorted(per_model))


def remove_member(ctx: Context, index: int, address: str, reason: str) -> bool:
    """Set a member's weight to 0 in epoch `index` (an INVALID host): its sub-group weights drop
    and, when `index` is the effective epoch, its validator power goes to 0 at once (consensus
    applies it two heights later). False if it was not a member with weight."""
    member = get_member(ctx.store, index, address)
    group = get_group(ctx.store, index)
    if member is None or group is None or member.weight == 0:
        return False
    put_member(ctx.store, index, msgspec.structs.replace(member, weight=0, removed=reason))
    total, per_model = totals(members(ctx.store, index))
    put_group(ctx.store, msgspec.structs.replace(group, total_weight=total,
                                                 model_weights=per_model))
    if index == effective_epoch(ctx.store) and len(member.validator_key) == 32:
        set_validator(ctx, Validator(pubkey=member.validator_key, power=0, operator=address))
    ctx.emit("epoch_member_removed", epoch=index, participant=address, reason=reason)
    return True


def count_request(ctx: Context, index: int) -> int:
    """One more completed inference in epoch `index`; returns the new count."""
    group = get_group(ctx.store, index)
    if group is None:
        return 0
    group = msgspec.structs.replace(group, number_of_requests=group.number_of_requests + 1)
    put_group(ctx.store, group)
    return group.number_of_requests


# -- seeds -----------------------------------------------------------------------------------

def get_seed_commitment(store: KVReader, index: int, address: str) -> bytes | None:
    return store.get(SEED + u64(index) + address.encode())


def put_seed_commitment(store: Overlay, index: int, address: str, commitment: bytes) -> None:
    store.set(SEED + u64(index) + address.encode(), commitment)
