"""The validation module as the app sees it: MsgValidation, the vote deadlines at the end of
every block, and queries.

Queries:
    validation/pending {validator, seed (hex)[, epoch]} -> [id hex]: inferences of `epoch`
                        (default: the effective one) the validator must validate under `seed`
                        and has not validated yet, sorted
    validation/votes {id (hex)}  -> VoteView: the vote on an inference (open or resolved) with
                                    its live tally
    validation/held              -> HeldView: work coins on hold for disputed inferences
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from chain.app.context import Module
from chain.app.epochs import state as epochs
from chain.app.errors import BadQuery, NotFound
from chain.app.queryparams import address_param, int_param
from chain.app.validation import state, votes
from chain.app.validation.handlers import HANDLERS
from chain.app.validation.selection import required_validations
from chain.store.kv import KVReader


def _hex_param(params: Mapping[str, str], name: str, length: int | None = None) -> bytes:
    value = params.get(name)
    if value is None:
        raise BadQuery(f"parameter {name!r} is required")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BadQuery(f"parameter {name!r} is not hex: {value!r}") from None
    if length is not None and len(raw) != length:
        raise BadQuery(f"parameter {name!r} must be {length} bytes, got {len(raw)}")
    return raw


def query_pending(store: KVReader, params: Mapping[str, str]) -> list[str]:
    validator = address_param(params, "validator")
    seed = _hex_param(params, "seed", 32)
    epoch = (int_param(params, "epoch") if "epoch" in params
             else epochs.effective_epoch(store))
    return [i.hex() for i in required_validations(store, epoch, validator, seed)
            if not state.has_validated(store, epoch, validator, i)]


class VoteView(msgspec.Struct, frozen=True):
    vote: state.Vote
    tally: votes.Tally


def query_votes(store: KVReader, params: Mapping[str, str]) -> VoteView:
    inference_id = _hex_param(params, "id", 64)
    vote = state.get_vote(store, inference_id)
    if vote is None:
        raise NotFound(f"no vote on inference {inference_id.hex()[:16]}...")
    return VoteView(vote=vote, tally=votes.tally(store, vote))


class HeldView(msgspec.Struct, frozen=True):
    total: int
    holds: list[state.HeldWork]


def query_held(store: KVReader, params: Mapping[str, str]) -> HeldView:
    del params
    held = state.holds(store)
    return HeldView(total=sum(h.total for h in held), holds=held)


MODULE = Module(name="validation", handlers=HANDLERS,
                queries={"pending": query_pending, "votes": query_votes, "held": query_held},
                end_block=votes.end_block)
