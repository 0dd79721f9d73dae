"""Handlers of the epochs messages.

MsgSubmitSeed: a participant commits to its secret validation seed for the epoch whose PoC is
running, any time from the PoC start to the commit deadline (a later commitment replaces an
earlier one). Without one it gets no weight in that epoch.

MsgSubmitUnitOfComputePriceProposal: a participant proposes the unit-of-compute price, at any
time; its latest proposal counts when a group forms (epochs.unit_price)."""

from __future__ import annotations

from chain.app.context import Context
from chain.app.epochs import state, unit_price
from chain.app.errors import TxError
from chain.app.participants.state import require_participant
from chain.types.msgs import MsgSubmitSeed, MsgSubmitUnitOfComputePriceProposal


class EpochError(TxError):
    codespace = "epochs"


class WrongEpoch(EpochError):
    code = 601

    def __init__(self, what: str, epoch: int, expected: int | None) -> None:
        want = "no PoC is running" if expected is None else f"the PoC running is epoch {expected}"
        super().__init__(f"{what} for epoch {epoch}, but {want}")
        self.epoch, self.expected = epoch, expected


class OutsideWindow(EpochError):
    code = 602

    def __init__(self, what: str, height: int, first: int, last: int) -> None:
        super().__init__(f"{what} is accepted in heights [{first}, {last}], not at {height}")
        self.height, self.first, self.last = height, first, last


def running_poc(ctx: Context, what: str, epoch: int) -> state.Stages:
    """The stages of the upcoming epoch if `epoch` is it, else WrongEpoch."""
    upcoming = state.upcoming_epoch(ctx.store)
    if upcoming is None or upcoming.index != epoch:
        raise WrongEpoch(what, epoch, upcoming.index if upcoming else None)
    return state.stages(state.epoch_params(ctx.store), upcoming.poc_start)


def handle_submit_seed(ctx: Context, msg: MsgSubmitSeed) -> None:
    require_participant(ctx.store, msg.participant)
    stages = running_poc(ctx, "a seed commitment", msg.epoch)
    if not stages.poc_start <= ctx.height <= stages.commit_deadline:
        raise OutsideWindow("a seed commitment", ctx.height, stages.poc_start,
                            stages.commit_deadline)
    state.put_seed_commitment(ctx.store, msg.epoch, msg.participant, msg.commitment)
    ctx.emit("seed_committed", participant=msg.participant, epoch=msg.epoch)


def handle_price_proposal(ctx: Context, msg: MsgSubmitUnitOfComputePriceProposal) -> None:
    # Only participants: a group's members are participants, so no one else's proposal could
    # ever count, and the store holds one record per participant at most.
    require_participant(ctx.store, msg.participant)
    epoch = state.effective_epoch(ctx.store)
    unit_price.put_proposal(ctx.store, unit_price.UnitOfComputePriceProposal(
        participant=msg.participant, price=msg.price, height=ctx.height, epoch=epoch))
    ctx.emit("unit_of_compute_price_proposal", participant=msg.participant, price=msg.price,
             epoch=epoch)


HANDLERS = {MsgSubmitSeed: handle_submit_seed,
            MsgSubmitUnitOfComputePriceProposal: handle_price_proposal}
