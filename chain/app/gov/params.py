"""Parameters of the gov module. Fractions are basis points (1/10_000) so that no node depends on
floating point. Defaults follow Gonka mainnet (quorum 0.334, threshold 0.5, veto 0.334, min deposit
25_000_000 ngonka); the periods are in blocks (28_800 blocks, about 48 h at 6 s a block)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.types.common import MAX_AMOUNT

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Blocks = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]


class GovParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Total deposit a proposal needs to enter its voting period.
    min_deposit: Annotated[int, msgspec.Meta(ge=1, le=MAX_AMOUNT)] = 25_000_000
    deposit_period_blocks: Blocks = 28_800
    voting_period_blocks: Blocks = 28_800
    # Share of all voting power that must vote (any option) for the result to count.
    quorum_bps: Bps = 3_340
    # Share of yes among the non-abstaining voted power needed to pass (strictly more than).
    threshold_bps: Bps = 5_000
    # Share of no_with_veto among all voted power that rejects and burns (strictly more than).
    veto_threshold_bps: Bps = 3_340
    # What happens to deposits: burned on a veto, on a missed quorum, on a missed min_deposit?
    burn_vote_veto: bool = True
    burn_vote_quorum: bool = False
    burn_deposit_on_expiry: bool = False
