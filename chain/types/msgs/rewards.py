"""Messages of the rewards and collateral modules: claiming an epoch's settlement by revealing the
epoch's validation seed; depositing and withdrawing collateral. Stateless checks only."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import Address, Height, PositiveAmount, check_address
from chain.types.msgs.base import BaseMsg

Seed = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class MsgClaimRewards(BaseMsg, tag="rewards/MsgClaimRewards"):
    participant: Address
    epoch: Height
    seed: Seed

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)


class MsgDepositCollateral(BaseMsg, tag="collateral/MsgDepositCollateral"):
    participant: Address
    amount: PositiveAmount

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)


class MsgWithdrawCollateral(BaseMsg, tag="collateral/MsgWithdrawCollateral"):
    """Start unbonding `amount`: it leaves the active balance now and is paid out after
    `unbonding_epochs` epochs; it stays slashable until then."""

    participant: Address
    amount: PositiveAmount

    def __post_init__(self) -> None:
        check_address("participant", self.participant)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)
