"""Parameters of the inference module: the request time window, record expiry and the
per-model dynamic price."""

from __future__ import annotations

from typing import Annotated

import msgspec

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class InferenceParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A record without both messages this many blocks after the first is expired: full refund,
    # and a missed request for the executor when the finish is what is missing.
    expiration_blocks: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    # The first message of an inference must carry a request time in [block time - age, block
    # time + advance]: the chain remembers ids (inference/seen) only that long, so an older
    # request can never be replayed once its record is pruned. At least a second each.
    max_request_age_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    max_request_advance_s: Annotated[int, msgspec.Meta(ge=1, le=3_600)] = 60
    # Until this epoch every model's price is `grace_per_token_price` (0: free inference).
    grace_period_end_epoch: Annotated[int, msgspec.Meta(ge=0)] = 90
    grace_per_token_price: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    # Utilisation (tokens used in the window / (capacity x window)) inside [low, high] keeps the
    # price; below or above moves it by elasticity x distance, at most elasticity x low per block.
    stability_low_bps: Bps = 4_000
    stability_high_bps: Bps = 6_000
    elasticity_bps: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    utilization_window_s: Annotated[int, msgspec.Meta(ge=1, le=3_600)] = 60
    # The chain-wide request budget transfer agents share (read off chain by the API node's
    # bandwidth limiter, each host getting an equal share): bytes of estimated request traffic
    # per block, and the estimate per prompt and per output token (the reference's 10752 KB,
    # 0.0023 KB and 0.64 KB).
    bandwidth_bytes_per_block: Annotated[int, msgspec.Meta(ge=1, le=10**12)] = 10_752 * 1024
    bandwidth_bytes_per_input_token: Annotated[int, msgspec.Meta(ge=0, le=10**6)] = 3
    bandwidth_bytes_per_output_token: Annotated[int, msgspec.Meta(ge=0, le=10**6)] = 655

    def validate(self) -> None:
        if self.stability_low_bps >= self.stability_high_bps:
            raise ValueError("stability_low_bps must be below stability_high_bps")
