"""Parameters of reputation: it grows by one step per settled epoch up to 100 after
`epochs_to_max` clean epochs; an epoch whose missed-request ratio exceeds the cutoff costs that
ratio (times the penalty) in epochs."""

from __future__ import annotations

from typing import Annotated

import msgspec


class ReputationParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epochs_to_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 30
    miss_percentage_cutoff_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100
    miss_requests_penalty_bps: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 10_000
