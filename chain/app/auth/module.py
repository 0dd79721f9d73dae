"""The auth module as the app sees it (handlers, queries, block hooks)."""

from __future__ import annotations

from chain.app.auth.handlers import HANDLERS
from chain.app.auth.queries import QUERIES
from chain.app.auth.state import prune_expired_grants, prune_seen
from chain.app.context import Context, Module


def _begin_block(ctx: Context) -> None:
    prune_seen(ctx.store, ctx.height)
    prune_expired_grants(ctx.store, ctx.height)


MODULE = Module(name="auth", handlers=HANDLERS, queries=QUERIES, begin_block=_begin_block)
