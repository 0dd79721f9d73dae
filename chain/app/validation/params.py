"""Parameters of the validation module: how often inferences are re-executed (the reference's
selection formula, fractions in ppm) and how a failed validation's vote ends."""

from __future__ import annotations

from typing import Annotated

import msgspec

PPM = 1_000_000
Ppm = Annotated[int, msgspec.Meta(ge=0, le=PPM)]
# An expected number of validators per inference, in ppm: the reference's averages are
# decimals, not fractions (its default maximum is 1.0, and a network may want more than one
# validator per inference); up to 100.
MAX_AVERAGE_PPM = 100 * PPM
AveragePpm = Annotated[int, msgspec.Meta(ge=0, le=MAX_AVERAGE_PPM)]


class ValidationParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Expected validators per inference: max_average for a new executor, falling with reputation
    # and traffic to min_average (traffic >= full_validation_traffic_cutoff).
    min_validation_average_ppm: AveragePpm = 10_000
    min_validation_halfway_ppm: AveragePpm = 50_000
    max_validation_average_ppm: AveragePpm = 1_000_000
    full_validation_traffic_cutoff: Annotated[int, msgspec.Meta(ge=2)] = 10_000
    min_validation_traffic_cutoff: Annotated[int, msgspec.Meta(ge=1)] = 100
    # Status rules: consecutive invalidations c with fpr^c < 1e-6 make a host INVALID, as does
    # a z-score above 1 once it has min_ramp_up_measurements inferences this epoch.
    false_positive_rate_ppm: Annotated[int, msgspec.Meta(ge=1, le=PPM - 1)] = 50_000
    min_ramp_up_measurements: Annotated[int, msgspec.Meta(ge=1)] = 10
    # A failed validation opens a vote; it ends when one side has half the epoch weight, or
    # after this many blocks by the larger side (a tie keeps the inference valid).
    vote_period_blocks: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 48

    def validate(self) -> None:
        if not (self.min_validation_average_ppm <= self.min_validation_halfway_ppm
                <= self.max_validation_average_ppm):
            raise ValueError("need min_validation_average <= halfway <= max_validation_average")
        if self.min_validation_traffic_cutoff * 2 >= self.full_validation_traffic_cutoff:
            raise ValueError("min_validation_traffic_cutoff must be below half of "
                             "full_validation_traffic_cutoff")
