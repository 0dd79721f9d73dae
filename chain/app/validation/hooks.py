"""What the epoch clock asks of the validation module when an epoch ends."""

from __future__ import annotations

from chain.app.context import Context


def close_epoch(ctx: Context, epoch: int) -> None:
    """Called before epoch `epoch` is settled: inferences of `epoch` whose invalidation vote is
    still open have their work coins moved out of the workers' balances onto a hold, so that
    settlement pays nothing that a later invalidation must refund. (Filled in by the validation
    module; until then no inference is ever VOTING.)"""
    del ctx, epoch
