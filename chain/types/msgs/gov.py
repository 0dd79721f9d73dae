"""Messages of the gov module: proposals to change parameters, deposits on them, and votes.

Stateless checks only (addresses, lengths, one change per (module, key)). Whether a proposal
exists, is open for deposits or votes, and whether the voter holds voting power is decided by the
gov handler against state.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from chain.types.common import Address, Amount, Height, PositiveAmount, check_address
from chain.types.msgs.base import BaseMsg
from chain.types.msgs.params import ParamChange

MAX_PROPOSAL_CHANGES = 32
MAX_TITLE_CHARS = 140
MAX_DESCRIPTION_CHARS = 10_000

VoteOption = Literal["yes", "no", "abstain", "no_with_veto"]
VOTE_OPTIONS: tuple[str, ...] = ("yes", "no", "abstain", "no_with_veto")
ProposalId = Height  # ids count from 1


class MsgSubmitProposal(BaseMsg, tag="gov/MsgSubmitProposal"):
    """Propose `changes`, escrowing `initial_deposit` ngonka from `proposer`."""

    proposer: Address
    changes: Annotated[tuple[ParamChange, ...],
                       msgspec.Meta(min_length=1, max_length=MAX_PROPOSAL_CHANGES)]
    initial_deposit: Amount
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS)]
    description: Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_CHARS)] = ""

    def __post_init__(self) -> None:
        check_address("proposer", self.proposer)
        if not self.changes:
            raise ValueError("a proposal changes at least one parameter")
        names = [(c.module, c.key) for c in self.changes]
        if len(set(names)) != len(names):
            raise ValueError("a proposal changes each (module, key) at most once")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.proposer,)


class MsgDeposit(BaseMsg, tag="gov/MsgDeposit"):
    """Add `amount` ngonka from `depositor` to proposal `proposal_id`'s deposit."""

    depositor: Address
    proposal_id: ProposalId
    amount: PositiveAmount

    def __post_init__(self) -> None:
        check_address("depositor", self.depositor)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.depositor,)


class MsgVote(BaseMsg, tag="gov/MsgVote"):
    """`voter` (a validator operator) votes `option` on `proposal_id`; a later vote replaces it."""

    voter: Address
    proposal_id: ProposalId
    option: VoteOption

    def __post_init__(self) -> None:
        check_address("voter", self.voter)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.voter,)
