"""The tally of a proposal's votes: a pure function of the votes, their weights and the params.

Rules (Cosmos SDK's, with basis points; `voted` = power that voted any option):
  1. no quorum    if total power is 0 or voted * 10_000 < quorum_bps * total power;
  2. vetoed       if no_with_veto * 10_000 > veto_threshold_bps * voted;
  3. rejected     if everyone who voted abstained;
  4. passed       if yes * 10_000 > threshold_bps * (voted - abstain);
  5. rejected     otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

from chain.app.gov.params import GovParams


class Outcome(enum.Enum):
    PASSED = "passed"
    REJECTED = "rejected"
    VETOED = "vetoed"
    NO_QUORUM = "no_quorum"


class TallyResult(msgspec.Struct, frozen=True):
    """Voting power behind each option, and the power of the whole validator set."""

    yes: int = 0
    no: int = 0
    abstain: int = 0
    no_with_veto: int = 0
    total_power: int = 0

    @property
    def voted(self) -> int:
        return self.yes + self.no + self.abstain + self.no_with_veto


def count(votes: Iterable[tuple[str, int]], total_power: int) -> TallyResult:
    """Sum (option, power) pairs; options are the VoteOption strings."""
    sums = {"yes": 0, "no": 0, "abstain": 0, "no_with_veto": 0}
    for option, power in votes:
        sums[option] += power
    return TallyResult(total_power=total_power, **sums)


def decide(result: TallyResult, params: GovParams) -> Outcome:
    voted = result.voted
    if result.total_power == 0 or voted * 10_000 < params.quorum_bps * result.total_power:
        return Outcome.NO_QUORUM
    if result.no_with_veto * 10_000 > params.veto_threshold_bps * voted:
        return Outcome.VETOED
    counted = voted - result.abstain
    if counted == 0:
        return Outcome.REJECTED
    if result.yes * 10_000 > params.threshold_bps * counted:
        return Outcome.PASSED
    return Outcome.REJECTED
