"""The params module as the app sees it (handlers, queries, block hooks)."""

from __future__ import annotations

from chain.app.context import Module
from chain.app.params.queries import QUERIES

MODULE = Module(name="params", queries=QUERIES)
