"""Messages of the bank module: moving coins between accounts.

Stateless checks only (addresses well-formed, amount in range); whether the sender can pay is
decided by the bank handler against state.
"""

from __future__ import annotations

from chain.types.common import Address, PositiveAmount, check_address
from chain.types.msgs.base import BaseMsg


class MsgSend(BaseMsg, tag="bank/MsgSend"):
    """Move `amount` ngonka (the single native denom) from `from_address` to `to_address`."""

    from_address: Address
    to_address: Address
    amount: PositiveAmount

    def __post_init__(self) -> None:
        check_address("from_address", self.from_address)
        check_address("to_address", self.to_address)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.from_address,)
