"""Handlers of the collateral messages (any account may lock collateral; only a participant's
collateral backs weight)."""

from __future__ import annotations

from chain.app.collateral import state
from chain.app.context import Context
from chain.app.epochs.state import effective_epoch
from chain.types.msgs import MsgDepositCollateral, MsgWithdrawCollateral


def handle_deposit(ctx: Context, msg: MsgDepositCollateral) -> None:
    state.deposit(ctx, msg.participant, msg.amount)


def handle_withdraw(ctx: Context, msg: MsgWithdrawCollateral) -> None:
    state.withdraw(ctx, msg.participant, msg.amount, effective_epoch(ctx.store))


HANDLERS = {MsgDepositCollateral: handle_deposit, MsgWithdrawCollateral: handle_withdraw}
