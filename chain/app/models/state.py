"""Reading the model registry (the `models` params, set by governance)."""

from __future__ import annotations

from chain.app.models.params import ModelsParams, ModelSpec
from chain.app.params.state import get_params
from chain.store.kv import KVReader


def registry(store: KVReader) -> tuple[ModelSpec, ...]:
    """The governance models, sorted by id."""
    return tuple(sorted(get_params(store, "models", ModelsParams).models, key=lambda m: m.id))


def get_model(store: KVReader, model_id: str) -> ModelSpec | None:
    return next((m for m in registry(store) if m.id == model_id), None)
