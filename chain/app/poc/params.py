"""Parameters of the poc module: which PoC function the network runs, how validators sample, and
the weight rules (acceptance majority, per-host power cap)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.poc import PARAM_SETS

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class PocChainParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A name in chain.types.poc.PARAM_SETS (the transformer shape, r_target, tolerance): the
    # function is code, the chain picks which one.
    param_set: str = "mainnet"
    # Nonces each validator samples per host (off chain; read by the API node).
    validation_sample_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 200
    # Honest mismatch rate and fraud p-value of the one-sided binomial test, in parts per 10^9.
    mismatch_rate_ppb: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 500_000
    fraud_threshold_ppb: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 100
    # No host may hold more than this share of the total weight (water-filling cap), raised to
    # 1/2 for two hosts and 2/5 for three; 0 disables the cap.
    max_power_bps: Bps = 2_500

    def validate(self) -> None:
        if self.param_set not in PARAM_SETS:
            raise ValueError(f"param_set {self.param_set!r} is not one of {sorted(PARAM_SETS)}")
