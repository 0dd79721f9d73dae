"""The inference module as the app sees it: inference records (MsgStartInference,
MsgFinishInference), their escrow and payment, expiry at the end of every block, and, at the start
of every block, the per-model dynamic price step and the pruning of ids that left the request time
window. See chain/app/PROTOCOL.md, inference."""

from __future__ import annotations

from chain.app.context import Context, Module
from chain.app.inference import pricing, window
from chain.app.inference.expiry import end_block
from chain.app.inference.handlers import HANDLERS
from chain.app.inference.queries import QUERIES


def begin_block(ctx: Context) -> None:
    pricing.begin_block(ctx)
    window.begin_block(ctx)


# The "inference" escrow account is a module account from genesis (auth's PROTOCOL_ACCOUNTS), so
# no MsgSend can put coins in it that no open inference accounts for.
MODULE = Module(name="inference", handlers=HANDLERS, queries=QUERIES, begin_block=begin_block,
                end_block=end_block)
