"""The model registry: the models the network serves, changed only by governance (a proposal that
sets `models.models`). Each epoch snapshots the registry when its group forms, so a change takes
effect at the next epoch."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.msgs.participants import ModelId

PPM = 1_000_000
# At most 1 GNK a token: price x (prompt + max tokens) stays far below the int64 amount limit.
Price = Annotated[int, msgspec.Meta(ge=0, le=10**9)]


class ModelSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: ModelId
    hf_repo: Annotated[str, msgspec.Meta(max_length=256)] = ""
    hf_commit: Annotated[str, msgspec.Meta(max_length=64)] = ""
    units_of_compute_per_token: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 100
    # Nonces of PoC weight per token/s of serving capacity (dynamic pricing's capacity).
    throughput_per_nonce: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 1_000
    # An inference passes validation iff its similarity (ppm) is strictly above this.
    validation_threshold_ppm: Annotated[int, msgspec.Meta(ge=0, le=PPM)] = 980_000
    # Dynamic price per token (ngonka): starts at base, never below min.
    base_per_token_price: Price = 100
    min_per_token_price: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 1

    def validate(self) -> None:
        if self.min_per_token_price > max(self.base_per_token_price, 1):
            raise ValueError(f"model {self.id}: min_per_token_price above base_per_token_price")


class ModelsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    models: Annotated[tuple[ModelSpec, ...], msgspec.Meta(max_length=256)] = ()

    def validate(self) -> None:
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError("two models share an id")
        for m in self.models:
            m.validate()



