"""Queries of the params module: `params/<module>` -> that module's params as JSON."""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.context import Query
from chain.app.params.registry import CONSENSUS, PARAMS_TYPES
from chain.app.params.state import get_consensus_params, get_params
from chain.store.kv import KVReader


def _query_for(module: str, type_: type) -> Query:
    def query(store: KVReader, params: Mapping[str, str]) -> object:
        return get_params(store, module, type_)

    return query


QUERIES: dict[str, Query] = {m: _query_for(m, t) for m, t in PARAMS_TYPES.items()}
QUERIES[CONSENSUS] = lambda store, params: get_consensus_params(store)
