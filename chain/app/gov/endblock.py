"""The gov module's end-of-block work: expire proposals whose deposit period ended short of
min_deposit, and tally those whose voting period ends at this height.

A passed proposal's changes are applied all together or not at all: if one does not fit its
module's params type the proposal is FAILED and nothing changes (the chain goes on). Deposits go
back to their depositors, except that they are burned on a veto (burn_vote_veto), a missed quorum
(burn_vote_quorum) or an expiry (burn_deposit_on_expiry), as in Cosmos.
"""

from __future__ import annotations

import msgspec

from chain.app.bank.state import burn, release
from chain.app.context import Context
from chain.app.gov import state
from chain.app.gov.params import GovParams
from chain.app.gov.tally import Outcome, count, decide
from chain.app.params.errors import ParamsError
from chain.app.params.state import apply_change, get_params
from chain.app.validators.state import power_of_operator, total_power


def _settle_deposits(ctx: Context, proposal: state.Proposal, burn_them: bool) -> None:
    if burn_them:
        burn(ctx, state.MODULE_NAME, proposal.total_deposit)
    else:
        for d in state.deposits(ctx.store, proposal.id):
            release(ctx, state.MODULE_NAME, d.depositor, d.amount)
    state.clear_deposits(ctx.store, proposal.id)
    ctx.emit("proposal_deposits", proposal_id=proposal.id,
             action="burned" if burn_them else "refunded", amount=proposal.total_deposit)


def _finish(ctx: Context, proposal: state.Proposal, **changes: object) -> None:
    proposal = msgspec.structs.replace(proposal, **changes)
    state.put_proposal(ctx.store, proposal)
    state.emit_status(ctx, proposal)


def _expire(ctx: Context, proposal: state.Proposal, params: GovParams) -> None:
    _settle_deposits(ctx, proposal, params.burn_deposit_on_expiry)
    _finish(ctx, proposal, status=state.EXPIRED,
            result_log=f"deposit period ended with {proposal.total_deposit} of the "
                       f"{params.min_deposit} ngonka needed")


def _apply_changes(ctx: Context, proposal: state.Proposal) -> str | None:
    """Apply every change, or none; the reason when one does not fit."""
    trial = ctx.child()
    try:
        for change in proposal.changes:
            apply_change(trial.store, change)
            trial.emit("param_change", proposal_id=proposal.id, module=change.module,
                       key=change.key, value=change.value)
    except ParamsError as e:
        return e.log
    ctx.keep(trial)
    return None


def _tally(ctx: Context, proposal: state.Proposal, params: GovParams) -> None:
    weighted = [(v.option, power_of_operator(ctx.store, v.voter))
                for v in state.votes(ctx.store, proposal.id)]
    result = count(weighted, total_power(ctx.store))
    outcome = decide(result, params)
    if outcome is Outcome.PASSED:
        failure = _apply_changes(ctx, proposal)
        status = state.PASSED if failure is None else state.FAILED
        log = "passed; changes applied" if failure is None else f"passed but not applied: {failure}"
    else:
        status, log = state.REJECTED, {
            Outcome.REJECTED: "rejected: not enough yes votes",
            Outcome.VETOED: "rejected: vetoed",
            Outcome.NO_QUORUM: "rejected: quorum not reached",
        }[outcome]
    burn_them = ((outcome is Outcome.VETOED and params.burn_vote_veto)
                 or (outcome is Outcome.NO_QUORUM and params.burn_vote_quorum))
    _settle_deposits(ctx, proposal, burn_them)
    _finish(ctx, proposal, status=status, tally=result, result_log=log)


def end_block(ctx: Context) -> None:
    params = get_params(ctx.store, "gov", GovParams)
    for end, proposal_id in state.due(ctx.store, state.DEPOSIT_QUEUE, ctx.height):
        state.dequeue(ctx.store, state.DEPOSIT_QUEUE, end, proposal_id)
        proposal = state.get_proposal(ctx.store, proposal_id)
        if proposal is not None and proposal.status == state.DEPOSIT_PERIOD:
            _expire(ctx, proposal, params)
    for end, proposal_id in state.due(ctx.store, state.VOTING_QUEUE, ctx.height):
        state.dequeue(ctx.store, state.VOTING_QUEUE, end, proposal_id)
        proposal = state.get_proposal(ctx.store, proposal_id)
        if proposal is not None and proposal.status == state.VOTING_PERIOD:
            _tally(ctx, proposal, params)
