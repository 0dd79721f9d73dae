"""The auth module as the app sees it (handlers, queries, block hooks)."""

from __future__ import annotations

from typing import Any

from chain.app.auth.handlers import HANDLERS
from chain.app.auth.queries import QUERIES
from chain.app.auth.state import (
    PROTOCOL_ACCOUNTS,
    module_account,
    prune_expired_grants,
    prune_seen,
)
from chain.app.context import Context, Module


def _begin_block(ctx: Context) -> None:
    prune_seen(ctx.store, ctx.height)
    prune_expired_grants(ctx.store, ctx.height)


def _init_genesis(ctx: Context, genesis: Any) -> None:
    """Mark every protocol module account (PROTOCOL_ACCOUNTS) as a module account at height 0,
    so that a plain MsgSend can never reach one of them, even before its module first uses it."""
    del genesis
    for name in PROTOCOL_ACCOUNTS:
        module_account(ctx, name)


MODULE = Module(name="auth", handlers=HANDLERS, queries=QUERIES, begin_block=_begin_block,
                init_genesis=_init_genesis)
