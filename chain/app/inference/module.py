"""The inference module as the app sees it: inference records (MsgStartInference,
MsgFinishInference), their escrow and payment, expiry at the end of every block, and the per-model
dynamic price stepped at the start of every block. See chain/app/PROTOCOL.md, inference."""

from __future__ import annotations

from chain.app.context import Module
from chain.app.inference.expiry import end_block
from chain.app.inference.handlers import HANDLERS
from chain.app.inference.pricing import begin_block
from chain.app.inference.queries import QUERIES

# The "inference" escrow account is a module account from genesis (auth's PROTOCOL_ACCOUNTS), so
# no MsgSend can put coins in it that no open inference accounts for.
MODULE = Module(name="inference", handlers=HANDLERS, queries=QUERIES, begin_block=begin_block,
                end_block=end_block)
