"""Which inferences a validator must re-execute: one pure function shared by the chain (claims,
the `validation/pending` query) and the API node (its validation worker), so that both always
agree on the list.

The rule is the reference's ShouldValidate with exact rational arithmetic (no floats: every
node, and the API node, must draw the same line):

    rep    = executor_reputation / 100
    minAvg = piecewise linear in the traffic basis T (see `min_average`)
    target = minAvg + (max_average - minAvg) * (1 - rep)        expected validators per inference
    p      = min(1, target * validator_power / (total_power - executor_power))
             (0 when total_power <= executor_power)
    r      = u64be(BLAKE3-256(SELECT_DOMAIN || seed || inference_id)[:8]) / (2^64 - 1)
    validate iff r < p

The seed is the validator's secret for the epoch (committed at its PoC start, revealed at claim),
so nobody can tell in advance which inferences it will check. Nothing here reads the clock or
any randomness, and `required_validations` only reads state.
"""

from __future__ import annotations

from fractions import Fraction

from chain.app.epochs import state as epochs
from chain.app.inference.state import COMPLETED_STATUSES, completed_in_epoch
from chain.app.params.state import get_params
from chain.app.validation.params import PPM, ValidationParams
from chain.crypto.hashing import blake3_256
from chain.store.kv import KVReader

SELECT_DOMAIN = b"gonka/validation/select/v1\x00"
_DRAW_MAX = 2**64 - 1


def min_average(traffic_basis: int, params: ValidationParams) -> Fraction:
    """Expected validators per inference of a fully trusted executor (reputation 100) at this
    traffic: max_average at low traffic, falling through halfway (at full/2) to min_average at
    the full-validation cutoff."""
    low = Fraction(params.min_validation_average_ppm, PPM)
    halfway = Fraction(params.min_validation_halfway_ppm, PPM)
    high = Fraction(params.max_validation_average_ppm, PPM)
    full = params.full_validation_traffic_cutoff
    half = Fraction(full, 2)
    floor_cutoff = params.min_validation_traffic_cutoff
    t = traffic_basis
    if t >= full:
        return low
    if t >= half:
        return low + (halfway - low) * (full - t) / half
    if t > floor_cutoff:
        return halfway + (high - halfway) * (half - t) / (half - floor_cutoff)
    return high


def validation_probability(*, executor_reputation: int, traffic_basis: int,
                           validator_power: int, executor_power: int, total_power: int,
                           params: ValidationParams) -> Fraction:
    """p in [0, 1]: the chance that a validator of this power must check one inference."""
    others = total_power - executor_power
    if others <= 0 or validator_power <= 0:
        return Fraction(0)
    # Reputation is 0..100 by construction; clamp so a bad input can never push p outside [0, 1].
    rep = Fraction(min(max(executor_reputation, 0), 100), 100)
    low = min_average(traffic_basis, params)
    high = Fraction(params.max_validation_average_ppm, PPM)
    target = low + (high - low) * (1 - rep)
    return min(Fraction(1), target * validator_power / others)


def selection_draw(seed: bytes, inference_id: bytes) -> Fraction:
    """r in [0, 1]: the validator's uniform draw for one inference."""
    digest = blake3_256(SELECT_DOMAIN + seed + inference_id)
    return Fraction(int.from_bytes(digest[:8], "big"), _DRAW_MAX)


def should_validate(seed: bytes, inference_id: bytes, *, executor_reputation: int,
                    traffic_basis: int, validator_power: int, executor_power: int,
                    total_power: int, params: ValidationParams) -> bool:
    p = validation_probability(executor_reputation=executor_reputation,
                               traffic_basis=traffic_basis, validator_power=validator_power,
                               executor_power=executor_power, total_power=total_power,
                               params=params)
    return selection_draw(seed, inference_id) < p


def required_validations(store: KVReader, epoch: int, validator: str, seed: bytes) -> list[bytes]:
    """Ids of `epoch`'s inferences that `validator`, whose revealed seed for `epoch` is `seed`,
    had to validate (MsgValidation) before it may claim `epoch`'s rewards. Sorted.

    Skipped: its own inferences; models it does not serve in `epoch` (or when it holds no
    weight); executors no longer in the model's sub-group (removed as INVALID); inferences
    completed in the last `inference_validation_cutoff` blocks of the epoch (no time was left to
    validate them)."""
    me = epochs.get_member(store, epoch, validator)
    group = epochs.get_group(store, epoch)
    if me is None or me.weight <= 0 or group is None:
        return []
    params = get_params(store, "validation", ValidationParams)
    last_completed = None
    if group.last_height:
        last_completed = group.last_height - epochs.epoch_params(store).inference_validation_cutoff
    executors: dict[str, epochs.GroupMember | None] = {}
    out = []
    for record in completed_in_epoch(store, epoch):
        if record.status not in COMPLETED_STATUSES or record.executor == validator:
            continue
        if record.model not in me.models:
            continue
        if last_completed is not None and record.completed_height > last_completed:
            continue
        if record.executor not in executors:
            executors[record.executor] = epochs.get_member(store, epoch, record.executor)
        executor = executors[record.executor]
        if executor is None or executor.weight <= 0 or record.model not in executor.models:
            continue
        if should_validate(seed, record.id, executor_reputation=record.executor_reputation,
                           traffic_basis=record.traffic_basis, validator_power=me.weight,
                           executor_power=record.executor_power,
                           total_power=record.total_power, params=params):
            out.append(record.id)
    return sorted(out)
