"""Queries of the bank module:
    bank/balance {address}     -> {address, amount}
    bank/supply                -> {denom, amount}
    bank/invariants            -> {supply, balances_total, holds}: sum(balances) == supply
    bank/module_account {name} -> {name, address, amount}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from chain.app.auth.state import module_address
from chain.app.bank import state
from chain.app.errors import BadQuery
from chain.app.queryparams import address_param
from chain.store.kv import KVReader
from chain.types.common import DENOM


class Balance(msgspec.Struct, frozen=True):
    address: str
    amount: int


class Supply(msgspec.Struct, frozen=True):
    denom: str
    amount: int


class Invariants(msgspec.Struct, frozen=True):
    supply: int
    balances_total: int
    holds: bool


class ModuleAccount(msgspec.Struct, frozen=True):
    name: str
    address: str
    amount: int


def query_balance(store: KVReader, params: Mapping[str, str]) -> Balance:
    address = address_param(params, "address")
    return Balance(address=address, amount=state.balance(store, address))


def query_supply(store: KVReader, params: Mapping[str, str]) -> Supply:
    return Supply(denom=DENOM, amount=state.supply(store))


def query_invariants(store: KVReader, params: Mapping[str, str]) -> Invariants:
    total, balances = state.supply(store), state.total_balances(store)
    return Invariants(supply=total, balances_total=balances, holds=total == balances)


def query_module_account(store: KVReader, params: Mapping[str, str]) -> ModuleAccount:
    name = params.get("name", "")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise BadQuery(f"parameter 'name' must be a module name, got {name!r}")
    address = module_address(name)
    return ModuleAccount(name=name, address=address, amount=state.balance(store, address))


QUERIES = {
    "balance": query_balance,
    "supply": query_supply,
    "invariants": query_invariants,
    "module_account": query_module_account,
}
