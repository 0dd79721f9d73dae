"""The validators module as the app sees it: one query, `validators/set`."""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.context import Module
from chain.app.validators.state import Validator, all_validators
from chain.store.kv import KVReader


def query_set(store: KVReader, params: Mapping[str, str]) -> list[Validator]:
    return all_validators(store)


MODULE = Module(name="validators", queries={"set": query_set})
