"""Typed parameters in state: `params/<module>` -> canonical MessagePack of the module's params
type; `params/consensus` -> the genesis ConsensusParams.

Parameters are set at init_chain from genesis `app_params` (msgspec.convert, defaults for what is
missing) and afterwards only by a passed gov proposal (`apply_change`). A module reads its params
with `get_params`. Nothing here decides *whether* a change should happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from chain.app.context import get_value, put_value
from chain.app.params.errors import InvalidParamValue, UnknownParamKey, UnknownParamModule
from chain.app.params.registry import CONSENSUS, PARAMS_TYPES
from chain.store.kv import KVReader, Overlay
from chain.types.genesis import ConsensusParams
from chain.types.msgs.params import ParamChange

PARAMS = b"params/"
T = TypeVar("T")


class InvalidGenesisParams(ValueError):
    """Genesis app_params that name an unknown module or break a params type."""


def params_type(module: str) -> type:
    try:
        return PARAMS_TYPES[module]
    except KeyError:
        raise UnknownParamModule(module) from None


def get_params(store: KVReader, module: str, type_: type[T]) -> T:
    """`module`'s params; the type's defaults if none were ever stored."""
    value = get_value(store, PARAMS + module.encode(), type_)
    return type_() if value is None else value


def get_consensus_params(store: KVReader) -> ConsensusParams:
    return get_params(store, CONSENSUS, ConsensusParams)


def _convert(type_: type[T], data: Any) -> T:
    value = msgspec.convert(data, type_)
    validate = getattr(value, "validate", None)
    if validate is not None:
        validate()
    return value


def init_params(store: Overlay, app_params: Mapping[str, Mapping[str, Any]],
                consensus: ConsensusParams) -> None:
    """Store every registered module's params from genesis (defaults where absent)."""
    unknown = sorted(set(app_params) - set(PARAMS_TYPES))
    if unknown:
        raise InvalidGenesisParams(f"app_params names modules without parameters: {unknown}")
    put_value(store, PARAMS + CONSENSUS.encode(), consensus)
    for module in sorted(PARAMS_TYPES):
        try:
            value = _convert(PARAMS_TYPES[module], app_params.get(module, {}))
        except (msgspec.ValidationError, ValueError) as e:
            raise InvalidGenesisParams(f"app_params.{module}: {e}") from None
        put_value(store, PARAMS + module.encode(), value)


def check_change_names(change: ParamChange) -> None:
    """Raise unless `change` names a governable module and one of its parameters."""
    type_ = params_type(change.module)
    if change.key not in type_.__struct_fields__:
        raise UnknownParamKey(change.module, change.key)


def apply_change(store: Overlay, change: ParamChange) -> None:
    """Set one parameter, checked against its module's type; InvalidParamValue if it does not
    fit (nothing is written then)."""
    check_change_names(change)
    type_ = params_type(change.module)
    current = msgspec.to_builtins(get_params(store, change.module, type_))
    current[change.key] = change.decoded_value
    try:
        value = _convert(type_, current)
    except (msgspec.ValidationError, ValueError) as e:
        raise InvalidParamValue(change.module, change.key, str(e)) from None
    put_value(store, PARAMS + change.module.encode(), value)
