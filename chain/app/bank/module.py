"""The bank module as the app sees it (handlers, queries, block hooks)."""

from __future__ import annotations

from chain.app.bank.handlers import HANDLERS
from chain.app.bank.queries import QUERIES
from chain.app.context import Module

MODULE = Module(name="bank", handlers=HANDLERS, queries=QUERIES)
