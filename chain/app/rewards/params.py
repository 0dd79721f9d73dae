"""Parameters of rewards: the epoch emission (exponential decay, capped in total) and vesting."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import MAX_AMOUNT, NGONKA_PER_GONKA

Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]


class RewardsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Emission of epoch E = floor(initial_epoch_reward * exp(decay_rate * (E - genesis_epoch))),
    # decay_rate in parts per 10^9 (mainnet -0.000475 per epoch, a half-life of ~1459 epochs).
    initial_epoch_reward: Amount = 323_000 * NGONKA_PER_GONKA
    decay_rate_ppb: Annotated[int, msgspec.Meta(ge=-10_000_000, le=0)] = -475_000
    genesis_epoch: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Total emission never exceeds this.
    standard_reward_amount: Amount = 680_000_000 * NGONKA_PER_GONKA
    # Epochs over which claimed work and reward coins vest (0: paid at once).
    work_vesting_epochs: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    reward_vesting_epochs: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
