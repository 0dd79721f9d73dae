"""The models module as the app sees it: the registry is the `models` params (changed by
governance); this module only answers queries.

Queries:
    models/all                         -> [ModelSpec] the current registry, sorted by id
    models/model {id}                  -> ModelSpec
"""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.context import Module
from chain.app.errors import BadQuery, NotFound
from chain.app.models.params import ModelSpec
from chain.app.models.state import get_model, registry
from chain.store.kv import KVReader


def query_all(store: KVReader, params: Mapping[str, str]) -> list[ModelSpec]:
    return list(registry(store))


def query_model(store: KVReader, params: Mapping[str, str]) -> ModelSpec:
    model_id = params.get("id")
    if not model_id:
        raise BadQuery("parameter 'id' is required")
    model = get_model(store, model_id)
    if model is None:
        raise NotFound(f"model {model_id!r} is not in the registry")
    return model


MODULE = Module(name="models", queries={"all": query_all, "model": query_model})
