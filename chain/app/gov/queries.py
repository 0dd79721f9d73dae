"""Queries of the gov module:
    gov/proposal {id}          -> Proposal
    gov/proposals [status]     -> [Proposal], by id
    gov/votes {id}             -> [{voter, option}]
    gov/deposits {id}          -> [{depositor, amount}] (held deposits; cleared when settled)
    gov/tally {id}             -> the tally as it would be now, with current voting power
"""

from __future__ import annotations

from collections.abc import Mapping

from chain.app.errors import BadQuery, NotFound
from chain.app.gov import state
from chain.app.gov.tally import TallyResult, count
from chain.app.queryparams import int_param
from chain.app.validators.state import power_of_operator, total_power
from chain.store.kv import KVReader

STATUSES = (state.DEPOSIT_PERIOD, state.VOTING_PERIOD, state.PASSED, state.REJECTED,
            state.FAILED, state.EXPIRED)


def _proposal(store: KVReader, params: Mapping[str, str]) -> state.Proposal:
    proposal_id = int_param(params, "id", minimum=1)
    proposal = state.get_proposal(store, proposal_id)
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id}")
    return proposal


def query_proposal(store: KVReader, params: Mapping[str, str]) -> state.Proposal:
    return _proposal(store, params)


def query_proposals(store: KVReader, params: Mapping[str, str]) -> list[state.Proposal]:
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    return state.proposals(store, status)


def query_votes(store: KVReader, params: Mapping[str, str]) -> list[state.VoteRecord]:
    return state.votes(store, _proposal(store, params).id)


def query_deposits(store: KVReader, params: Mapping[str, str]) -> list[state.DepositRecord]:
    return state.deposits(store, _proposal(store, params).id)


def query_tally(store: KVReader, params: Mapping[str, str]) -> TallyResult:
    proposal = _proposal(store, params)
    if proposal.tally is not None:
        return proposal.tally
    weighted = [(v.option, power_of_operator(store, v.voter))
                for v in state.votes(store, proposal.id)]
    return count(weighted, total_power(store))


QUERIES = {
    "proposal": query_proposal,
    "proposals": query_proposals,
    "votes": query_votes,
    "deposits": query_deposits,
    "tally": query_tally,
}
