"""Messages of the epochs module: the per-epoch validation seed commitment.

A participant commits to a secret 32-byte seed for epoch E during E's PoC (Sprint and commit
exchange) and reveals it when it claims E's rewards; the commitment is
`seed_commitment(participant, epoch, seed)` (chain.types.inference). A participant without a
commitment for E gets no weight in E.
"""

from __future__ import annotations

from chain.types.common import Address, Hash32, Height, check_address
from chain.types.msgs.base import BaseMsg


class MsgSubmitSeed(BaseMsg, tag="epochs/MsgSubmitSeed"):
    participant: Address
    epoch: Height
    commitment: Hash32

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)
