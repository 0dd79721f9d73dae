"""Handlers of the gov messages: submit a proposal, deposit on it, vote on it.

A proposal waits in its deposit period until its deposits reach `min_deposit` (then its voting
period starts at once) or until `deposit_end_height` (then it expires, see `endblock`). Only
accounts that operate a validator with power may vote; a later vote replaces an earlier one. The
weight of a vote is read at tally time, not when it is cast.
"""

from __future__ import annotations

import msgspec

from chain.app.bank.state import escrow
from chain.app.context import Context
from chain.app.gov import state
from chain.app.gov.errors import NotInVotingPeriod, NoVotingPower, ProposalClosed, UnknownProposal
from chain.app.gov.params import GovParams
from chain.app.params.state import check_change_names, get_params
from chain.app.validators.state import power_of_operator
from chain.types.msgs import MsgDeposit, MsgSubmitProposal, MsgVote


def _gov_params(ctx: Context) -> GovParams:
    return get_params(ctx.store, "gov", GovParams)


def _deposit(ctx: Context, proposal: state.Proposal, depositor: str, amount: int) -> None:
    escrow(ctx, depositor, state.MODULE_NAME, amount)
    state.add_deposit(ctx.store, proposal.id, depositor, amount)
    proposal = msgspec.structs.replace(proposal, total_deposit=proposal.total_deposit + amount)
    ctx.emit("proposal_deposit", proposal_id=proposal.id, depositor=depositor, amount=amount)
    params = _gov_params(ctx)
    if proposal.status == state.DEPOSIT_PERIOD and proposal.total_deposit >= params.min_deposit:
        state.dequeue(ctx.store, state.DEPOSIT_QUEUE, proposal.deposit_end_height, proposal.id)
        end = ctx.height + params.voting_period_blocks
        proposal = msgspec.structs.replace(proposal, status=state.VOTING_PERIOD,
                                           voting_start_height=ctx.height, voting_end_height=end)
        state.enqueue(ctx.store, state.VOTING_QUEUE, end, proposal.id)
        ctx.emit("voting_period_start", proposal_id=proposal.id, voting_end_height=end)
    state.put_proposal(ctx.store, proposal)


def handle_submit(ctx: Context, msg: MsgSubmitProposal) -> None:
    for change in msg.changes:
        check_change_names(change)
    params = _gov_params(ctx)
    proposal = state.Proposal(
        id=state.next_id(ctx.store), proposer=msg.proposer, title=msg.title,
        description=msg.description, changes=msg.changes, status=state.DEPOSIT_PERIOD,
        submit_height=ctx.height, deposit_end_height=ctx.height + params.deposit_period_blocks,
        total_deposit=0,
    )
    state.put_proposal(ctx.store, proposal)
    state.enqueue(ctx.store, state.DEPOSIT_QUEUE, proposal.deposit_end_height, proposal.id)
    ctx.emit("submit_proposal", proposal_id=proposal.id, proposer=msg.proposer,
             deposit_end_height=proposal.deposit_end_height)
    if msg.initial_deposit:
        _deposit(ctx, proposal, msg.proposer, msg.initial_deposit)


def handle_deposit(ctx: Context, msg: MsgDeposit) -> None:
    proposal = state.get_proposal(ctx.store, msg.proposal_id)
    if proposal is None:
        raise UnknownProposal(msg.proposal_id)
    if proposal.status not in (state.DEPOSIT_PERIOD, state.VOTING_PERIOD):
        raise ProposalClosed(proposal.id, proposal.status)
    _deposit(ctx, proposal, msg.depositor, msg.amount)


def handle_vote(ctx: Context, msg: MsgVote) -> None:
    proposal = state.get_proposal(ctx.store, msg.proposal_id)
    if proposal is None:
        raise UnknownProposal(msg.proposal_id)
    if proposal.status != state.VOTING_PERIOD:
        raise NotInVotingPeriod(proposal.id, proposal.status)
    if power_of_operator(ctx.store, msg.voter) == 0:
        raise NoVotingPower(msg.voter)
    state.set_vote(ctx.store, proposal.id, msg.voter, msg.option)
    ctx.emit("proposal_vote", proposal_id=proposal.id, voter=msg.voter, option=msg.option)


HANDLERS = {MsgSubmitProposal: handle_submit, MsgDeposit: handle_deposit, MsgVote: handle_vote}
