"""The poc module as the app sees it.

Queries:
    poc/commits {epoch}                      -> [PocCommitRecord] sorted by participant
    poc/validations {epoch, participant}     -> [PocValidationRecord] sorted by validator
    poc/function                             -> chain.types.poc.PocParams of `poc.param_set`
"""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.context import Module
from chain.app.params.state import get_params
from chain.app.poc import state
from chain.app.poc.handlers import HANDLERS
from chain.app.poc.params import PocChainParams
from chain.app.queryparams import address_param, int_param
from chain.store.kv import KVReader
from chain.types.poc import PARAM_SETS, PocParams


def query_commits(store: KVReader, params: Mapping[str, str]) -> list[state.PocCommitRecord]:
    return state.commits(store, int_param(params, "epoch"))


def query_validations(store: KVReader,
                      params: Mapping[str, str]) -> list[state.PocValidationRecord]:
    return state.validations(store, int_param(params, "epoch"),
                             address_param(params, "participant"))


def query_function(store: KVReader, params: Mapping[str, str]) -> PocParams:
    return PARAM_SETS[get_params(store, "poc", PocChainParams).param_set]


MODULE = Module(name="poc", handlers=HANDLERS, queries={
    "commits": query_commits, "validations": query_validations, "function": query_function})
