"""Messages of the poc module: a host's commitment to its valid nonces, and validators' verdicts.

`MsgPocCommit.root` is the BLAKE3 Merkle root (native.merkle_root) over the host's valid nonces
sorted ascending and unique, each leaf `poc_leaf(nonce, distance)` (chain.types.poc). Nonce lists
stay off chain. Stateless checks only; windows and membership are checked by the poc handler.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import Address, Hash32, Height, check_address
from chain.types.msgs.base import BaseMsg

# Far above any real count (mainnet hosts report ~1e6 nonces an epoch) and far below int64.
MAX_POC_COUNT = 2**40
PocCount = Annotated[int, msgspec.Meta(ge=1, le=MAX_POC_COUNT)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_POC_COUNT)]


class MsgPocCommit(BaseMsg, tag="poc/MsgPocCommit"):
    """`participant` found `count` valid nonces in epoch `epoch`'s Sprint; the last one counts."""

    participant: Address
    epoch: Height
    count: PocCount
    root: Hash32

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)


class MsgPocValidation(BaseMsg, tag="poc/MsgPocValidation"):
    """`validator` checked `checked` sampled nonces of `participant`, `failed` of them failed;
    `fraud` is its verdict (one-sided binomial test). A later one from the same validator wins."""

    validator: Address
    participant: Address
    epoch: Height
    fraud: bool
    checked: Count
    failed: Count

    def __post_init__(self) -> None:
        check_address("validator", self.validator)
        check_address("participant", self.participant)
        if self.failed > self.checked:
            raise ValueError(f"failed {self.failed} exceeds checked {self.checked}")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.validator,)
