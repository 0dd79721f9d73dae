"""The participants module as the app sees it.

Queries:
    participants/participant {address} -> Participant
    participants/all                   -> [Participant] sorted by address
"""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.context import Module
from chain.app.errors import NotFound
from chain.app.participants import state
from chain.app.participants.handlers import HANDLERS
from chain.app.queryparams import address_param
from chain.store.kv import KVReader


def query_participant(store: KVReader, params: Mapping[str, str]) -> state.Participant:
    address = address_param(params, "address")
    participant = state.get_participant(store, address)
    if participant is None:
        raise NotFound(f"{address} is not a registered participant")
    return participant


def query_all(store: KVReader, params: Mapping[str, str]) -> list[state.Participant]:
    return state.all_participants(store)


MODULE = Module(name="participants", handlers=HANDLERS,
                queries={"participant": query_participant, "all": query_all})
