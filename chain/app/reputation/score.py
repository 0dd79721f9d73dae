"""Reputation score (0..100) of a participant, from its settled epochs (reference 6.1).

Each settlement records, per participant, one epoch and that epoch's miss cost; the score is

    actual     = epochs - miss_cost                       (in epochs)
    reputation = 100                          if actual > epochs_to_max
                 0                            if actual <= 0
                 floor(100 * actual / epochs_to_max)     otherwise

(the reference's floor(100 * trunc2(actual / epochs_to_max)) is the same number.) An epoch's miss
ratio is m = missed / served (served = completed inferences it executed); if m exceeds
miss_percentage_cutoff its cost is m * miss_requests_penalty epochs.

Exact integer arithmetic: the miss cost is kept in nano-epochs (10^-9 epoch), each epoch's cost
floored to a whole nano-epoch when it is recorded, so the aggregate is one bounded integer.
Deviations from the reference, on purpose:
* served = 0 with misses: the reference's ratio is 0 (a host that missed everything lost
  nothing); here the ratio is missed / 1, so such an epoch costs `missed` epochs (times the
  penalty).
* The cutoff and penalty in force when an epoch is recorded apply to it (the reference
  recomputes all epochs with today's params); epochs_to_max is read when the score is asked.
This module must never read anything but its own records and params.

Keys:
    reputation/record/<address> -> ReputationRecord
"""

from __future__ import annotations

import msgspec

from chain.app.context import Context, get_value, put_value
from chain.app.params.state import get_params
from chain.app.reputation.params import ReputationParams
from chain.store.kv import KVReader

RECORD = b"reputation/record/"
NANO = 1_000_000_000
BPS = 10_000


class ReputationRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epochs: int = 0                 # settled epochs recorded
    miss_cost_nano: int = 0         # sum of the epochs' miss costs, in 10^-9 epoch


def reputation_params(store: KVReader) -> ReputationParams:
    return get_params(store, "reputation", ReputationParams)


def get_record(store: KVReader, address: str) -> ReputationRecord:
    return get_value(store, RECORD + address.encode(), ReputationRecord) or ReputationRecord()


def miss_cost_nano(params: ReputationParams, served: int, missed: int) -> int:
    """One epoch's miss cost in nano-epochs: 0 unless missed / served > the cutoff."""
    denominator = max(served, 1)
    if missed * BPS <= params.miss_percentage_cutoff_bps * denominator:
        return 0
    return missed * params.miss_requests_penalty_bps * NANO // (denominator * BPS)


def record_epoch(ctx: Context, address: str, inference_count: int, missed: int) -> None:
    """Count one settled epoch of `address` with its served and missed inference counts."""
    params = reputation_params(ctx.store)
    old = get_record(ctx.store, address)
    cost = miss_cost_nano(params, inference_count, missed)
    put_value(ctx.store, RECORD + address.encode(),
              ReputationRecord(epochs=old.epochs + 1, miss_cost_nano=old.miss_cost_nano + cost))


def score(record: ReputationRecord, epochs_to_max: int) -> int:
    actual_nano = record.epochs * NANO - record.miss_cost_nano
    if actual_nano <= 0:
        return 0
    if actual_nano > epochs_to_max * NANO:
        return 100
    return 100 * actual_nano // (epochs_to_max * NANO)


def reputation(store: KVReader, address: str) -> int:
    """0..100: grows with clean settled epochs (see the module docstring)."""
    return score(get_record(store, address), reputation_params(store).epochs_to_max)
