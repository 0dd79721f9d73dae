"""The epoch emission: a fixed subsidy per epoch that decays exponentially.

    epoch_emission(E) = floor(initial_epoch_reward * exp(decay_rate_ppb/1e9 * (E - genesis_epoch)))

computed with `decimal` in a local context of 50 significant digits (ROUND_HALF_EVEN). Decimal's
`exp` is correctly rounded, so every machine gets the same digits (the reference's float64 `exp`
does not promise that). This module must never use floats or the process-wide decimal context.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

from chain.app.rewards.params import RewardsParams

# Far more digits than an amount has (at most 19): the floor is of a value exact to ~30 places.
_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)


def epoch_emission(params: RewardsParams, epoch: int) -> int:
    """Reward coins minted for settling `epoch`, before the total cap (0 before genesis_epoch)."""
    if epoch < params.genesis_epoch:
        return 0
    ctx = _CONTEXT
    exponent = ctx.divide(ctx.multiply(Decimal(params.decay_rate_ppb),
                                       Decimal(epoch - params.genesis_epoch)),
                          Decimal(1_000_000_000))
    value = ctx.multiply(Decimal(params.initial_epoch_reward), ctx.exp(exponent))
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def capped_emission(params: RewardsParams, epoch: int, minted_so_far: int) -> int:
    """`epoch_emission` reduced so that the total ever minted stays <= standard_reward_amount."""
    remaining = max(params.standard_reward_amount - minted_so_far, 0)
    return min(epoch_emission(params, epoch), remaining)
