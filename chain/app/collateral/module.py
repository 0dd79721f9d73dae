"""The collateral module as the app sees it.

Queries:
    collateral/participant {address} -> {address, active, unbonding: [{completion_epoch, amount}]}
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from chain.app.collateral import state
from chain.app.collateral.handlers import HANDLERS
from chain.app.context import Module
from chain.app.queryparams import address_param
from chain.store.kv import KVReader


class CollateralView(msgspec.Struct, frozen=True):
    address: str
    active: int
    unbonding: list[state.Unbonding]


def query_participant(store: KVReader, params: Mapping[str, str]) -> CollateralView:
    address = address_param(params, "address")
    return CollateralView(address=address, active=state.active(store, address),
                          unbonding=state.unbonding(store, address))


MODULE = Module(name="collateral", handlers=HANDLERS, queries={"participant": query_participant})
