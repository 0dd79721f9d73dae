"""State of the validation module: who validated what, the invalidate/revalidate votes, and the
work coins on hold for disputed inferences of settled epochs.

Keys:
    validation/done/<u64 epoch><validator><id>   -> b""   first-round validations (claims read
                                                           these through `has_validated`)
    validation/vote/<id>                          -> Vote  (kept after it is resolved)
    validation/open/<u64 epoch><id>               -> b""   votes still open, by inference epoch
    validation/deadline/<u64 height><id>          -> b""   votes still open, by deadline
    validation/hold/<id>                          -> HeldWork

Retention: when epoch N becomes effective, epoch N-2 can no longer be claimed, so its done keys
and the resolved votes of its inferences are deleted (`prune_epoch`); a vote still open then is
deleted with its inference's record when it resolves (votes.resolve). Open votes, their indexes
and holds are never pruned.

Money: the cost of a completed inference sits in the "work" module account and is owed to its
workers (executor and first-round validators) through their `coin_balance`. This module only
moves it between coin balances (work sharing), onto a hold (`hold_work`, when the epoch of a
disputed inference settles) and back, or out of "work" to the developer (invalidation). So

    balance("work") == sum(coin_balance) + held_total + unclaimed settled work

holds after every block. This module never mints, burns or touches the "inference" escrow.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from chain.app.context import Context, get_value, put_value, u64
from chain.app.inference.state import InferenceRecord, epoch_ids
from chain.app.params.state import get_params
from chain.app.participants.state import put_participant, require_participant
from chain.app.validation.params import ValidationParams
from chain.store.kv import KVReader, Overlay, scan_prefix

DONE = b"validation/done/"
VOTE = b"validation/vote/"
OPEN = b"validation/open/"
DEADLINE = b"validation/deadline/"
HOLD = b"validation/hold/"

Outcome = Literal["", "invalidated", "validated"]


def validation_params(store: KVReader) -> ValidationParams:
    return get_params(store, "validation", ValidationParams)


# -- first-round validations -----------------------------------------------------------------

def _done_key(epoch: int, validator: str, inference_id: bytes) -> bytes:
    return DONE + u64(epoch) + validator.encode() + inference_id


def has_validated(store: KVReader, epoch: int, validator: str, inference_id: bytes) -> bool:
    """True if `validator` sent its first-round MsgValidation for `inference_id` of `epoch`."""
    return store.get(_done_key(epoch, validator, inference_id)) is not None


def mark_validated(store: Overlay, epoch: int, validator: str, inference_id: bytes) -> None:
    store.set(_done_key(epoch, validator, inference_id), b"")


def validated_ids(store: KVReader, epoch: int, validator: str) -> list[bytes]:
    """Ids `validator` validated (first round) in `epoch`, sorted."""
    prefix = DONE + u64(epoch) + validator.encode()
    return [key[len(prefix):] for key, _ in scan_prefix(store, prefix)]


# -- votes -----------------------------------------------------------------------------------

class Ballot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    voter: str
    invalidate: bool
    height: int


class Vote(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The invalidate/revalidate vote on one inference. Ballots are sorted by voter; a voter's
    weight is its member weight in the inference's epoch group at tally time (a host removed as
    INVALID meanwhile counts 0)."""

    inference_id: bytes
    epoch: int
    opened_by: str
    opened_height: int
    deadline: int
    ballots: tuple[Ballot, ...] = ()
    outcome: Outcome = ""
    resolved_height: int = 0


def get_vote(store: KVReader, inference_id: bytes) -> Vote | None:
    return get_value(store, VOTE + inference_id, Vote)


def put_vote(store: Overlay, vote: Vote) -> None:
    put_value(store, VOTE + vote.inference_id, vote)


def open_vote(store: Overlay, vote: Vote) -> None:
    put_vote(store, vote)
    store.set(OPEN + u64(vote.epoch) + vote.inference_id, b"")
    store.set(DEADLINE + u64(vote.deadline) + vote.inference_id, b"")


def close_vote(store: Overlay, vote: Vote) -> None:
    """Store a resolved vote and drop it from the open indexes."""
    put_vote(store, vote)
    store.delete(OPEN + u64(vote.epoch) + vote.inference_id)
    store.delete(DEADLINE + u64(vote.deadline) + vote.inference_id)


def with_ballot(vote: Vote, ballot: Ballot) -> Vote:
    """The vote with `ballot` replacing any earlier ballot of the same voter."""
    ballots = {b.voter: b for b in vote.ballots}
    ballots[ballot.voter] = ballot
    return msgspec.structs.replace(vote, ballots=tuple(ballots[k] for k in sorted(ballots)))


def open_votes_of_epoch(store: KVReader, epoch: int) -> list[bytes]:
    prefix = OPEN + u64(epoch)
    return [key[len(prefix):] for key, _ in scan_prefix(store, prefix)]


def due_votes(store: KVReader, height: int) -> list[bytes]:
    """Ids of open votes whose deadline is <= `height`, in deadline then id order."""
    return [key[len(DEADLINE) + 8:] for key, _ in store.scan(DEADLINE, DEADLINE + u64(height + 1))]


# -- work shares and holds -------------------------------------------------------------------

class WorkerShare(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    worker: str
    amount: int


class HeldWork(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Work coins of a disputed inference taken out of its workers' coin balances when its
    epoch settled; they go back to the workers (validated) or to the developer (invalidated)."""

    inference_id: bytes
    epoch: int
    total: int
    shares: tuple[WorkerShare, ...]


def workers(record: InferenceRecord) -> list[str]:
    """The executor first, then the first-round validators that passed it, in order."""
    return [record.executor, *record.validated_by]


def shares(cost: int, worker_list: list[str]) -> list[WorkerShare]:
    """The reference's equal split: floor(cost / n) each, the remainder to the first (the
    executor). The shares always add up to `cost`."""
    n = len(worker_list)
    each, rest = divmod(cost, n)
    return [WorkerShare(worker=w, amount=each + (rest if i == 0 else 0))
            for i, w in enumerate(worker_list)]


def adjust_coin_balance(store: Overlay, address: str, delta: int) -> None:
    if delta == 0:
        return
    participant = require_participant(store, address, "worker")
    put_participant(store, msgspec.structs.replace(
        participant, coin_balance=participant.coin_balance + delta))


def get_hold(store: KVReader, inference_id: bytes) -> HeldWork | None:
    return get_value(store, HOLD + inference_id, HeldWork)


def put_hold(store: Overlay, hold: HeldWork) -> None:
    put_value(store, HOLD + hold.inference_id, hold)


def delete_hold(store: Overlay, inference_id: bytes) -> None:
    store.delete(HOLD + inference_id)


def holds(store: KVReader) -> list[HeldWork]:
    """Every hold, sorted by inference id."""
    return [msgspec.msgpack.decode(v, type=HeldWork) for _, v in scan_prefix(store, HOLD)]


def held_total(store: KVReader) -> int:
    """Work coins on hold for disputed inferences (a term of the "work" account invariant)."""
    return sum(h.total for h in holds(store))


# -- pruning ---------------------------------------------------------------------------------

def delete_vote(store: Overlay, vote: Vote) -> None:
    """Forget a resolved vote (an open one is never deleted: its indexes point at it)."""
    assert vote.outcome != "", "an open vote is never deleted"
    store.delete(VOTE + vote.inference_id)


def prune_epoch(ctx: Context, epoch: int) -> None:
    """Delete the first-round validations of `epoch` (no claim of it can come any more) and the
    resolved votes of its inferences. Run before inference's prune_epoch: the epoch's inferences
    are found through inference's by_epoch index."""
    done = scan_prefix(ctx.store, DONE + u64(epoch))
    for key, _ in done:
        ctx.store.delete(key)
    votes = 0
    for inference_id in epoch_ids(ctx.store, epoch):
        vote = get_vote(ctx.store, inference_id)
        if vote is not None and vote.outcome != "":
            delete_vote(ctx.store, vote)
            votes += 1
    ctx.emit("validation_pruned", epoch=epoch, validations=len(done), votes=votes)
