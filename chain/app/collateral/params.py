"""Parameters of collateral: unbonding, slashing, and how collateral backs PoC weight."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import MAX_AMOUNT

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class CollateralParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    unbonding_epochs: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 1
    slash_invalid_bps: Bps = 2_000
    slash_downtime_bps: Bps = 1_000
    # Double signing (duplicate-vote evidence): Cosmos x/slashing's slash_fraction_double_sign.
    slash_double_sign_bps: Bps = 500
    # Downtime: missed / (served + missed) above this at settlement.
    downtime_missed_bps: Bps = 500
    # From epochs after this one, only base_weight_ratio of a host's PoC weight counts without
    # collateral; the rest needs collateral_per_weight_unit ngonka per weight unit.
    grace_period_end_epoch: Annotated[int, msgspec.Meta(ge=0)] = 180
    base_weight_ratio_bps: Bps = 2_000
    collateral_per_weight_unit: Annotated[int, msgspec.Meta(ge=1, le=MAX_AMOUNT)] = 1
