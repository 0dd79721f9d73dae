"""The inference module as the app sees it: inference records (MsgStartInference,
MsgFinishInference), their escrow and payment, expiry at the end of every block, and the per-model
dynamic price stepped at the start of every block. See chain/app/PROTOCOL.md, inference."""

from __future__ import annotations

from typing import Any

from chain.app.auth.state import module_account
from chain.app.context import Context, Module
from chain.app.inference.expiry import end_block
from chain.app.inference.handlers import HANDLERS
from chain.app.inference.pricing import begin_block
from chain.app.inference.queries import QUERIES


def init_genesis(ctx: Context, genesis: Any) -> None:
    """Mark the escrow account as a module account from the start, so that no MsgSend can put
    coins in it that no open inference accounts for."""
    del genesis
    module_account(ctx, "inference")


MODULE = Module(name="inference", handlers=HANDLERS, queries=QUERIES, begin_block=begin_block,
                end_block=end_block, init_genesis=init_genesis)
