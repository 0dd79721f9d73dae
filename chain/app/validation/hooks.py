"""What the epoch clock asks of the validation module when an epoch ends."""

from __future__ import annotations

from chain.app.context import Context
from chain.app.inference.state import VOTING, get_inference
from chain.app.validation import state


def close_epoch(ctx: Context, epoch: int) -> None:
    """Called before epoch `epoch` is settled: inferences of `epoch` whose invalidation vote is
    still open have their work coins moved out of the workers' balances onto a hold, so that
    settlement pays nothing that a later invalidation must refund. The vote goes on; its
    outcome releases the hold (validation.votes.resolve)."""
    for inference_id in state.open_votes_of_epoch(ctx.store, epoch):
        record = get_inference(ctx.store, inference_id)
        if record is None or record.status != VOTING or state.get_hold(ctx.store, inference_id):
            continue
        shares = state.shares(record.actual_cost, state.workers(record))
        for share in shares:
            state.adjust_coin_balance(ctx.store, share.worker, -share.amount)
        state.put_hold(ctx.store, state.HeldWork(inference_id=inference_id, epoch=epoch,
                                                 total=record.actual_cost, shares=tuple(shares)))
        ctx.emit("work_held", inference_id=inference_id.hex(), epoch=epoch,
                 amount=record.actual_cost)
