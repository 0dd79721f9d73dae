"""Handler of MsgSend: a transfer between accounts, if transfers are enabled and the recipient is
not a module account (module accounts only take coins through their module, so that an escrow
always equals what its module recorded)."""

from __future__ import annotations

from chain.app.auth.state import get_account
from chain.app.bank.errors import BlockedRecipient, SendDisabled
from chain.app.bank.params import BankParams
from chain.app.bank.state import transfer
from chain.app.context import Context
from chain.app.params.state import get_params
from chain.types.msgs import MsgSend


def handle_send(ctx: Context, msg: MsgSend) -> None:
    params = get_params(ctx.store, "bank", BankParams)
    if not params.send_enabled:
        raise SendDisabled()
    recipient = get_account(ctx.store, msg.to_address)
    if recipient is not None and recipient.module is not None:
        raise BlockedRecipient(msg.to_address, recipient.module)
    transfer(ctx, msg.from_address, msg.to_address, msg.amount)


HANDLERS = {MsgSend: handle_send}
