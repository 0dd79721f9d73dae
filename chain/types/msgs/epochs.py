"""Messages of the epochs module: the per-epoch validation seed commitment, and a participant's
proposal of the unit-of-compute price.

A participant commits to a secret 32-byte seed for epoch E during E's PoC (Sprint and commit
exchange) and reveals it when it claims E's rewards; the commitment is
`seed_commitment(participant, epoch, seed)` (chain.types.inference). A participant without a
commitment for E gets no weight in E.

A participant may propose the price of a unit of compute (ngonka) at any time; its latest
proposal replaces the earlier one. Each epoch's group fixes the weighted median of its members'
proposals when it forms (chain/app/PROTOCOL.md, epochs).
"""

from __future__ import annotations

from chain.types.common import Address, Hash32, Height, PositiveAmount, check_address
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


class MsgSubmitUnitOfComputePriceProposal(BaseMsg,
                                          tag="epochs/MsgSubmitUnitOfComputePriceProposal"):
    """`participant` proposes `price` ngonka per unit of compute (the reference's `creator`)."""

    participant: Address
    price: PositiveAmount

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)
