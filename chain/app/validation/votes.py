"""The invalidate/revalidate vote on an inference whose first-round validation failed, and what
its outcome does to the money and to the executor.

A vote is open while the inference is VOTING. Ballots come from members with weight of the
inference's epoch group (the executor included); each ballot weighs the voter's member weight
at tally time. It is resolved as soon as one side holds at least half the group's total weight
(invalidate checked first), or at the end of its deadline block by the larger side (a tie keeps
the inference valid).

Invalidated: the workers give back their shares (from their coin balances, or from the hold if
the epoch has settled meanwhile), the developer gets the actual cost back out of the "work"
account, and the executor's invalidation counters go up. Validated: the executor's run of
invalidations ends, and held coins go back to the workers. Either way the executor's status is
recomputed. If the inference's epoch was pruned while the vote was open, the record and the
vote are deleted once it resolves.
"""

from __future__ import annotations

import msgspec

from chain.app.bank.state import release
from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.inference.state import (
    INVALIDATED,
    VALIDATED,
    VOTING,
    InferenceRecord,
    delete_record,
    get_inference,
    put_inference,
)
from chain.app.participants.state import put_participant, require_participant
from chain.app.reputation.status import recompute_status
from chain.app.validation import state
from chain.store.kv import KVReader

WORK_ACCOUNT = "work"


class Tally(msgspec.Struct, frozen=True):
    invalidate: int
    revalidate: int
    total: int


def tally(store: KVReader, vote: state.Vote) -> Tally:
    group = epochs.get_group(store, vote.epoch)
    invalidate = revalidate = 0
    for ballot in vote.ballots:
        member = epochs.get_member(store, vote.epoch, ballot.voter)
        weight = member.weight if member is not None else 0
        if ballot.invalidate:
            invalidate += weight
        else:
            revalidate += weight
    return Tally(invalidate=invalidate, revalidate=revalidate,
                 total=group.total_weight if group is not None else 0)


def decided(t: Tally) -> state.Outcome:
    """The outcome once one side holds half the group's weight ("" while neither does)."""
    if t.invalidate > 0 and 2 * t.invalidate >= t.total:
        return "invalidated"
    if t.revalidate > 0 and 2 * t.revalidate >= t.total:
        return "validated"
    return ""


def at_deadline(t: Tally) -> state.Outcome:
    return "invalidated" if t.invalidate > t.revalidate else "validated"


def open_vote(ctx: Context, record: InferenceRecord, opened_by: str) -> None:
    """A first-round failure: the inference becomes VOTING with `opened_by`'s invalidate
    ballot in (resolved at once if that alone is half the weight)."""
    put_inference(ctx.store, msgspec.structs.replace(record, status=VOTING))
    deadline = ctx.height + state.validation_params(ctx.store).vote_period_blocks
    vote = state.Vote(inference_id=record.id, epoch=record.epoch, opened_by=opened_by,
                      opened_height=ctx.height, deadline=deadline,
                      ballots=(state.Ballot(voter=opened_by, invalidate=True, height=ctx.height),))
    state.open_vote(ctx.store, vote)
    ctx.emit("inference_vote_opened", inference_id=record.id.hex(), epoch=record.epoch,
             opened_by=opened_by, deadline=deadline)
    _resolve_if_decided(ctx, vote)


def cast(ctx: Context, record: InferenceRecord, voter: str, invalidate: bool) -> None:
    """Add (or replace) `voter`'s ballot on the open vote of `record`."""
    vote = state.get_vote(ctx.store, record.id)
    assert vote is not None and vote.outcome == "", "a VOTING inference has an open vote"
    vote = state.with_ballot(vote, state.Ballot(voter=voter, invalidate=invalidate,
                                                height=ctx.height))
    state.put_vote(ctx.store, vote)
    ctx.emit("inference_vote", inference_id=record.id.hex(), voter=voter,
             option="invalidate" if invalidate else "revalidate")
    _resolve_if_decided(ctx, vote)


def _resolve_if_decided(ctx: Context, vote: state.Vote) -> None:
    outcome = decided(tally(ctx.store, vote))
    if outcome:
        resolve(ctx, vote, outcome)


def end_block(ctx: Context) -> None:
    """Resolve every open vote whose deadline is this block."""
    for inference_id in state.due_votes(ctx.store, ctx.height):
        vote = state.get_vote(ctx.store, inference_id)
        assert vote is not None and vote.outcome == ""
        resolve(ctx, vote, at_deadline(tally(ctx.store, vote)))


def resolve(ctx: Context, vote: state.Vote, outcome: state.Outcome) -> None:
    record = get_inference(ctx.store, vote.inference_id)
    assert record is not None and record.status == VOTING
    t = tally(ctx.store, vote)
    state.close_vote(ctx.store, msgspec.structs.replace(vote, outcome=outcome,
                                                        resolved_height=ctx.height))
    hold = state.get_hold(ctx.store, record.id)
    if hold is not None:
        state.delete_hold(ctx.store, record.id)
    if outcome == "invalidated":
        if hold is None:
            for share in state.shares(record.actual_cost, state.workers(record)):
                state.adjust_coin_balance(ctx.store, share.worker, -share.amount)
        # Held coins need no move: they are already out of every coin balance.
        release(ctx, WORK_ACCOUNT, record.requested_by, record.actual_cost)
        put_inference(ctx.store, msgspec.structs.replace(record, status=INVALIDATED))
        executor = require_participant(ctx.store, record.executor, "executor")
        put_participant(ctx.store, msgspec.structs.replace(
            executor, consecutive_invalid=executor.consecutive_invalid + 1,
            stats=msgspec.structs.replace(executor.stats,
                                          invalidated=executor.stats.invalidated + 1)))
    else:
        if hold is not None:
            for share in hold.shares:
                state.adjust_coin_balance(ctx.store, share.worker, share.amount)
        put_inference(ctx.store, msgspec.structs.replace(record, status=VALIDATED))
        executor = require_participant(ctx.store, record.executor, "executor")
        put_participant(ctx.store, msgspec.structs.replace(
            executor, consecutive_invalid=0,
            stats=msgspec.structs.replace(executor.stats,
                                          validated=executor.stats.validated + 1)))
    # A vote that outlived its epoch's pruning (at the switch to epoch + 2) takes the record and
    # itself along now: nothing can read them any more (claims of the epoch are over).
    pruned = epochs.effective_epoch(ctx.store) >= record.epoch + 2
    if pruned:
        final = get_inference(ctx.store, record.id)
        closed = state.get_vote(ctx.store, record.id)
        assert final is not None and closed is not None
        delete_record(ctx.store, final)
        state.delete_vote(ctx.store, closed)
    ctx.emit("inference_vote_resolved", inference_id=record.id.hex(), outcome=outcome,
             invalidate_weight=t.invalidate, revalidate_weight=t.revalidate,
             total_weight=t.total, held=hold is not None, pruned=str(pruned).lower())
    recompute_status(ctx, record.executor)
