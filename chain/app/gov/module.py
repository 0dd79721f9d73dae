"""The gov module as the app sees it: handlers, queries, and the end-of-block tally."""

from __future__ import annotations

from chain.app.context import Module
from chain.app.gov.endblock import end_block
from chain.app.gov.handlers import HANDLERS
from chain.app.gov.queries import QUERIES

MODULE = Module(name="gov", handlers=HANDLERS, queries=QUERIES, end_block=end_block)
