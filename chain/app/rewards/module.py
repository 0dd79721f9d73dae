"""The rewards module as the app sees it: MsgClaimRewards and the rewards queries. Settlement has
no block hook of its own: the epoch clock (chain.app.epochs.transitions) calls
`settlement.settle` when an epoch ends."""

from __future__ import annotations

from chain.app.context import Module
from chain.app.rewards.claims.handlers import HANDLERS
from chain.app.rewards.queries import QUERIES

MODULE = Module(name="rewards", handlers=HANDLERS, queries=QUERIES)
