"""Parameters of the epochs module: where epochs and their PoC stages fall, in blocks.

Stages of an epoch whose PoC starts at height P (chain/app/PROTOCOL.md section "epochs"):
Sprint [P, P+sprint), commits accepted in [P+1, P+sprint+exchange], validations in the next
`validation_blocks` blocks, the new group formed at the end of the last of them, the new validator
set and settlement `set_new_validators_delay` blocks later, claims from the block after that.
Also the unit-of-compute price counted for members without a proposal.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import MAX_AMOUNT

Blocks = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]


class EpochParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    epoch_length: Blocks = 17_280
    # Height of epoch 1's PoC start; epoch 0 (genesis) runs until then.
    first_poc_start: Blocks = 300
    sprint_blocks: Blocks = 60
    exchange_blocks: Blocks = 5
    validation_blocks: Blocks = 20
    set_new_validators_delay: Blocks = 120
    # Inferences finished in the last this-many blocks of an epoch are not required of validators
    # when they claim: there may be no time left to validate them.
    inference_validation_cutoff: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 80
    # ngonka per unit of compute, counted for a group member that never proposed a price when
    # the group's weighted median price is fixed (the reference's 100).
    default_unit_of_compute_price: Annotated[int, msgspec.Meta(ge=1, le=MAX_AMOUNT)] = 100

    @property
    def stages_length(self) -> int:
        """Blocks from a PoC start to its set-new-validators height."""
        return (self.sprint_blocks + self.exchange_blocks + self.validation_blocks
                + self.set_new_validators_delay)

    def validate(self) -> None:
        # The next PoC must start after this one's claim height, so that epochs never overlap.
        if self.stages_length + 1 >= self.epoch_length:
            raise ValueError(f"the PoC stages ({self.stages_length} blocks) plus the claim "
                             f"block must fit in epoch_length {self.epoch_length}")
        if self.inference_validation_cutoff >= self.epoch_length:
            raise ValueError("inference_validation_cutoff must be shorter than an epoch")
