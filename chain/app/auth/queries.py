"""Queries of the auth module:
    auth/account {address}              -> Account
    auth/grants {granter[, grantee]}    -> [{granter, grantee, msg_type, expiration_height}]
    auth/seen {hash (hex)}              -> {hash, timeout_height}: a tx hash refused as a replay
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from chain.app.auth import state
from chain.app.errors import BadQuery, NotFound
from chain.app.queryparams import address_param, optional_address_param
from chain.store.kv import KVReader


def query_account(store: KVReader, params: Mapping[str, str]) -> state.Account:
    address = address_param(params, "address")
    account = state.get_account(store, address)
    if account is None:
        raise NotFound(f"no account {address}")
    return account


def query_grants(store: KVReader, params: Mapping[str, str]) -> list[state.GrantRecord]:
    granter = address_param(params, "granter")
    return state.grants(store, granter, optional_address_param(params, "grantee"))


class SeenTx(msgspec.Struct, frozen=True):
    hash: str
    timeout_height: int


def query_seen(store: KVReader, params: Mapping[str, str]) -> SeenTx:
    text = params.get("hash", "")
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise BadQuery(f"parameter 'hash' must be 64 lower-case hex digits, got {text!r}")
    timeout = state.seen_timeout(store, bytes.fromhex(text))
    if timeout is None:
        raise NotFound(f"tx {text} is not remembered (never seen, or its timeout passed)")
    return SeenTx(hash=text, timeout_height=timeout)


QUERIES = {"account": query_account, "grants": query_grants, "seen": query_seen}
