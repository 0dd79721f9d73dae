"""Errors of the gov module (codes 300-399, codespace "gov")."""

from __future__ import annotations

from chain.app.errors import TxError


class GovError(TxError):
    codespace = "gov"


class UnknownProposal(GovError):
    code = 301

    def __init__(self, proposal_id: int) -> None:
        super().__init__(f"no proposal {proposal_id}")
        self.proposal_id = proposal_id


class ProposalClosed(GovError):
    code = 302

    def __init__(self, proposal_id: int, status: str) -> None:
        super().__init__(f"proposal {proposal_id} takes no deposits: it is {status}")
        self.proposal_id, self.status = proposal_id, status


class NotInVotingPeriod(GovError):
    code = 303

    def __init__(self, proposal_id: int, status: str) -> None:
        super().__init__(f"proposal {proposal_id} is not open for votes: it is {status}")
        self.proposal_id, self.status = proposal_id, status


class NoVotingPower(GovError):
    code = 304

    def __init__(self, voter: str) -> None:
        super().__init__(f"{voter} operates no validator with voting power")
        self.voter = voter
