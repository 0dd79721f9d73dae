"""Handler of MsgValidation: a validator's verdict on one completed inference it re-executed.

First round (`revalidation` false), from a member with weight of the effective epoch's group,
on an inference of the effective epoch that someone else executed, once per validator:
    recorded (claims check it), then by the inference's status
    finished  + pass -> validated: the validator joins the workers and the cost is re-split
                        equally (reference 4.5); the executor's run of invalidations ends
    validated + pass -> the validator joins the workers (re-split)
    finished/validated + fail -> voting: a vote opens with the validator's invalidate ballot
    voting           -> the verdict counts as a ballot in the open vote
    invalidated      -> nothing more
Revalidation (`revalidation` true): a ballot on a VOTING inference (pass = revalidate, fail =
invalidate) from a member with weight of the inference's epoch group; the executor may vote; a
later ballot replaces the voter's earlier one.

pass <=> similarity_ppm > the validation_threshold_ppm of the model's snapshot in the
inference's epoch. A refused message changes nothing.
"""

from __future__ import annotations

import msgspec

from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.errors import TxError
from chain.app.inference.state import (
    FINISHED,
    INVALIDATED,
    VALIDATED,
    VOTING,
    InferenceRecord,
    get_inference,
    put_inference,
)
from chain.app.participants.state import put_participant, require_participant
from chain.app.reputation.status import recompute_status
from chain.app.validation import state, votes
from chain.types.msgs import MsgValidation


class ValidationError(TxError):
    codespace = "validation"


class NotAValidator(ValidationError):
    code = 901

    def __init__(self, address: str, epoch: int) -> None:
        super().__init__(f"{address} holds no weight in epoch {epoch}'s group, so it cannot "
                         "validate inferences of it")
        self.address, self.epoch = address, epoch


class OwnInference(ValidationError):
    code = 902

    def __init__(self, address: str, inference_id: bytes) -> None:
        super().__init__(f"{address} executed inference {inference_id.hex()[:16]}... and "
                         "cannot validate it")
        self.address, self.inference_id = address, inference_id


class InferenceNotFound(ValidationError):
    code = 903

    def __init__(self, inference_id: bytes) -> None:
        super().__init__(f"no inference {inference_id.hex()[:16]}...")
        self.inference_id = inference_id


class InferenceNotComplete(ValidationError):
    code = 904

    def __init__(self, inference_id: bytes, status: str) -> None:
        super().__init__(f"inference {inference_id.hex()[:16]}... is {status}, only completed "
                         "inferences can be validated")
        self.inference_id, self.status = inference_id, status


class AlreadyValidated(ValidationError):
    code = 905

    def __init__(self, address: str, inference_id: bytes) -> None:
        super().__init__(f"{address} already validated inference {inference_id.hex()[:16]}...")
        self.address, self.inference_id = address, inference_id


class TooLate(ValidationError):
    code = 906

    def __init__(self, inference_id: bytes, epoch: int, effective: int) -> None:
        super().__init__(f"inference {inference_id.hex()[:16]}... belongs to epoch {epoch}, "
                         f"which is settled (epoch {effective} is effective): too late for a "
                         "first-round validation")
        self.inference_id, self.epoch, self.effective = inference_id, epoch, effective


class NotVoting(ValidationError):
    code = 907

    def __init__(self, inference_id: bytes, status: str) -> None:
        super().__init__(f"inference {inference_id.hex()[:16]}... is {status}, not voting: "
                         "there is nothing to revalidate")
        self.inference_id, self.status = inference_id, status


class ModelNotInEpoch(ValidationError):
    code = 908

    def __init__(self, model: str, epoch: int) -> None:
        super().__init__(f"model {model!r} has no snapshot in epoch {epoch}'s group")
        self.model, self.epoch = model, epoch


def passes(ctx: Context, record: InferenceRecord, similarity_ppm: int) -> bool:
    group = epochs.get_group(ctx.store, record.epoch)
    snapshot = epochs.model_snapshot(group, record.model) if group is not None else None
    if snapshot is None:
        raise ModelNotInEpoch(record.model, record.epoch)
    return similarity_ppm > snapshot.validation_threshold_ppm


def require_weight(ctx: Context, epoch: int, address: str) -> None:
    member = epochs.get_member(ctx.store, epoch, address)
    if member is None or member.weight <= 0:
        raise NotAValidator(address, epoch)


def handle_validation(ctx: Context, msg: MsgValidation) -> None:
    record = get_inference(ctx.store, msg.inference_id)
    if record is None:
        raise InferenceNotFound(msg.inference_id)
    if not record.completed:
        raise InferenceNotComplete(record.id, record.status)
    if msg.revalidation:
        revalidate(ctx, msg, record)
    else:
        first_round(ctx, msg, record)


def first_round(ctx: Context, msg: MsgValidation, record: InferenceRecord) -> None:
    effective = epochs.effective_epoch(ctx.store)
    require_weight(ctx, effective, msg.validator)
    if msg.validator == record.executor:
        raise OwnInference(msg.validator, record.id)
    if record.epoch != effective:
        raise TooLate(record.id, record.epoch, effective)
    if state.has_validated(ctx.store, record.epoch, msg.validator, record.id):
        raise AlreadyValidated(msg.validator, record.id)
    passed = passes(ctx, record, msg.similarity_ppm)
    state.mark_validated(ctx.store, record.epoch, msg.validator, record.id)
    ctx.emit("inference_validation", inference_id=record.id.hex(), validator=msg.validator,
             similarity_ppm=msg.similarity_ppm, passed=passed, revalidation=False,
             status=record.status)
    if record.status == INVALIDATED:
        return
    if record.status == VOTING:
        # A validator that drew this inference counts like any voter of the epoch.
        votes.cast(ctx, record, msg.validator, invalidate=not passed)
        return
    if not passed:
        votes.open_vote(ctx, record, msg.validator)
        return
    share_work(ctx, record, msg.validator)
    if record.status == FINISHED:
        executor = require_participant(ctx.store, record.executor, "executor")
        put_participant(ctx.store, msgspec.structs.replace(
            executor, consecutive_invalid=0,
            stats=msgspec.structs.replace(executor.stats,
                                          validated=executor.stats.validated + 1)))
        recompute_status(ctx, record.executor)


def share_work(ctx: Context, record: InferenceRecord, validator: str) -> None:
    """Add `validator` to the workers and re-split the actual cost equally (reference 4.5):
    each worker's coin balance moves by (new share - old share)."""
    before = {s.worker: s.amount for s in state.shares(record.actual_cost, state.workers(record))}
    after = state.shares(record.actual_cost, [*state.workers(record), validator])
    # Debits first: a worker's balance holds its old share, so it never goes negative.
    for share in sorted(after, key=lambda s: s.amount - before.get(s.worker, 0)):
        state.adjust_coin_balance(ctx.store, share.worker,
                                  share.amount - before.get(share.worker, 0))
    put_inference(ctx.store, msgspec.structs.replace(
        record, status=VALIDATED, validated_by=(*record.validated_by, validator)))
    ctx.emit("work_shared", inference_id=record.id.hex(), validator=validator,
             workers=len(after), share=after[-1].amount)


def revalidate(ctx: Context, msg: MsgValidation, record: InferenceRecord) -> None:
    if record.status != VOTING:
        raise NotVoting(record.id, record.status)
    require_weight(ctx, record.epoch, msg.validator)
    passed = passes(ctx, record, msg.similarity_ppm)
    ctx.emit("inference_validation", inference_id=record.id.hex(), validator=msg.validator,
             similarity_ppm=msg.similarity_ppm, passed=passed, revalidation=True,
             status=record.status)
    votes.cast(ctx, record, msg.validator, invalidate=not passed)


HANDLERS = {MsgValidation: handle_validation}
