"""Messages of the validation module: a validator's verdict on one inference it re-executed.

`similarity_ppm` is the similarity of the replayed top-k logprobs to the executor's, in millionths
(1_000_000 = identical); a token or length mismatch is 0. The inference passes iff
similarity_ppm > the model's validation_threshold_ppm. `revalidation` marks a vote on an
inference whose first validation failed (status VOTING). Stateless checks only.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import Address, Signature, check_address
from chain.types.msgs.base import BaseMsg

PPM = 1_000_000


class MsgValidation(BaseMsg, tag="validation/MsgValidation"):
    validator: Address
    inference_id: Signature
    similarity_ppm: Annotated[int, msgspec.Meta(ge=0, le=PPM)]
    revalidation: bool = False

    def __post_init__(self) -> None:
        check_address("validator", self.validator)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.validator,)
