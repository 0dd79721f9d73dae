"""The per-model price per token, and its update at the start of every block.

Two units: inferences are charged in whole ngonka per token (`per_token_price`, locked into a
record at its first message), while the dynamic price is kept in millionths of a ngonka
(`PRICE_SCALE`), so that a small price can move by a fraction of a ngonka each block and still
rise. The charged price is always floor(precise / PRICE_SCALE).

With E the effective epoch:
* E < grace_period_end_epoch: every model costs `grace_per_token_price` (nothing is stored).
* otherwise the price is dynamic: it starts at the model snapshot's `base_per_token_price`
  (x PRICE_SCALE) and each block moves with the utilisation u of the model's sub-group over the
  last `utilization_window_s` seconds of block time:
      u = tokens completed at block times in [now - window, now] / (capacity x window_s),
      capacity = the sub-group's total weight (at least 1), read as tokens per second;
      low <= u <= high: unchanged;
      u < low:  factor = max(1 - (low - u) x elasticity, 1 - low x elasticity);
      u > high: factor = min(1 + (u - high) x elasticity, 1 + low x elasticity);
      precise' = min(max(floor(precise x factor), min_per_token_price x PRICE_SCALE),
                     MAX_PRICE x PRICE_SCALE).
  With the default bps (4000, 6000, 500) a block moves the precise price by at most 2%. MAX_PRICE
  (10^9 ngonka) is the registry's price ceiling: (prompt + max tokens) x price stays far below
  the amount limit. The floor only loses less than a millionth of a ngonka a step, so any price
  of at least 50 millionths (1 / 0.02) rises under load: a whole price of 1 ngonka can.
All arithmetic is exact integers and Fractions; time is block time (`ctx.time_ns`), never a clock.
This module must never charge anything but whole ngonka: fractions of a ngonka exist only in the
stored price.
"""

from __future__ import annotations

from fractions import Fraction

from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.inference import state
from chain.app.inference.params import InferenceParams
from chain.app.models.params import ModelSpec
from chain.app.params.state import get_params
from chain.store.kv import KVReader

BPS = 10_000
SECOND_NS = 10**9
MAX_PRICE = 10**9          # ngonka per token
PRICE_SCALE = 10**6        # the stored price counts millionths of a ngonka


def inference_params(store: KVReader) -> InferenceParams:
    return get_params(store, "inference", InferenceParams)


def in_grace_period(store: KVReader, params: InferenceParams | None = None) -> bool:
    params = params or inference_params(store)
    return epochs.effective_epoch(store) < params.grace_period_end_epoch


def precise_price(store: KVReader, spec: ModelSpec) -> int:
    """The price of `spec` (a model of the effective snapshot) in millionths of a ngonka."""
    params = inference_params(store)
    if in_grace_period(store, params):
        return params.grace_per_token_price * PRICE_SCALE
    stored = state.stored_price(store, spec.id)
    return spec.base_per_token_price * PRICE_SCALE if stored is None else stored


def current_price(store: KVReader, spec: ModelSpec) -> int:
    """The whole-ngonka price a new inference of `spec` locks in: floor(precise / PRICE_SCALE)."""
    return precise_price(store, spec) // PRICE_SCALE


def next_price(old: int, tokens: int, capacity: int, spec: ModelSpec,
               params: InferenceParams) -> int:
    """One block's step of the dynamic price (pure); `old` and the result are in millionths of
    a ngonka."""
    u = Fraction(tokens, max(capacity, 1) * params.utilization_window_s)
    low = Fraction(params.stability_low_bps, BPS)
    high = Fraction(params.stability_high_bps, BPS)
    elasticity = Fraction(params.elasticity_bps, BPS)
    if u < low:
        factor = max(1 - (low - u) * elasticity, 1 - low * elasticity)
    elif u > high:
        factor = min(1 + (u - high) * elasticity, 1 + low * elasticity)
    else:
        factor = Fraction(1)
    # floor: Fraction's // rounds toward minus infinity, and the factor is never negative.
    new = (old * factor.numerator) // factor.denominator
    return min(max(new, spec.min_per_token_price * PRICE_SCALE), MAX_PRICE * PRICE_SCALE)


def begin_block(ctx: Context) -> None:
    """Forget usage older than the window, then (outside the grace period) step the price of
    every model of the effective epoch's snapshot, in model id order."""
    params = inference_params(ctx.store)
    since = ctx.time_ns - params.utilization_window_s * SECOND_NS
    state.prune_usage(ctx.store, max(since, 0))
    if in_grace_period(ctx.store, params):
        return
    effective = epochs.effective_epoch(ctx.store)
    group = epochs.get_group(ctx.store, effective)
    if group is None:
        return
    used = state.usage_since(ctx.store, max(since, 0))
    for spec in sorted(group.models, key=lambda m: m.id):
        old = precise_price(ctx.store, spec)
        new = next_price(old, used.get(spec.id, 0), epochs.model_weight(group, spec.id), spec,
                         params)
        if new != old or state.stored_price(ctx.store, spec.id) is None:
            state.put_price(ctx.store, spec.id, new)
