"""Handlers of MsgStartInference (the transfer agent's record, which escrows the developer's
coins) and MsgFinishInference (the executor's record, which reports tokens); either may arrive
first, and the second completes the inference: the executor is paid in work coins and the
developer refunded the rest of the escrow.

Both messages are checked in full on arrival (signatures, parties, model, executor's sub-group
membership in the effective epoch); the first must be new and inside the request time window
(window.py), the second must agree with the first on every field both carry. This module never
judges an inference's output: that is validation's.
"""

from __future__ import annotations

import msgspec

import native
from chain.app.auth.state import module_account, module_address
from chain.app.bank import state as bank
from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.inference import state, window
from chain.app.inference.errors import (
    DeveloperCannotPay,
    DuplicateInference,
    ExecutorNotServing,
    InferenceExpired,
    InvalidDeveloperSignature,
    InvalidExecutorSignature,
    InvalidTransferSignature,
    MismatchedInference,
    UnknownModel,
)
from chain.app.inference.pricing import current_price, inference_params
from chain.app.inference.state import InferenceRecord
from chain.app.models.params import ModelSpec
from chain.app.participants import state as participants
from chain.types.inference import execution_sign_bytes, request_sign_bytes, transfer_sign_bytes
from chain.types.msgs import MsgFinishInference, MsgStartInference

START_TAG = "inference/MsgStartInference"
FINISH_TAG = "inference/MsgFinishInference"
# Fields both messages carry: the second must repeat the first's exactly.
SHARED_FIELDS = ("requested_by", "transfer_agent", "executor", "model", "prompt_hash",
                 "request_timestamp_ns", "transfer_signature")

Msg = MsgStartInference | MsgFinishInference


def _check_common(ctx: Context, msg: Msg, record: InferenceRecord | None,
                  this: str) -> ModelSpec:
    """Checks shared by both messages, in order: the id's state (for a first message: not seen
    before, request time inside the window), the developer's and transfer agent's signatures,
    the parties, the model and the executor's sub-group. Returns the model's snapshot in the
    effective epoch."""
    if record is not None:
        if record.status == state.EXPIRED:
            raise InferenceExpired(msg.inference_id, record.expires_at)
        seen = record.start_seen if this == "start" else record.finish_seen
        if seen:
            raise DuplicateInference(msg.inference_id, this)
    else:
        # A first message: the id must be new (its record may have been pruned) and its request
        # time inside the window, so that the seen index covers every id that could come back.
        if state.is_seen(ctx.store, msg.request_timestamp_ns, msg.inference_id):
            raise DuplicateInference(msg.inference_id, this, pruned=True)
        window.check_request_time(ctx, msg.inference_id, msg.request_timestamp_ns)
    request = request_sign_bytes(msg.prompt_hash, msg.request_timestamp_ns, msg.transfer_agent)
    if not native.verify_secp256k1(msg.requester_pubkey, request, msg.inference_id):
        raise InvalidDeveloperSignature(msg.inference_id, msg.requested_by)
    participants.require_participant(ctx.store, msg.transfer_agent, "transfer agent")
    participants.require_participant(ctx.store, msg.executor, "executor")
    transfer = transfer_sign_bytes(msg.prompt_hash, msg.request_timestamp_ns,
                                   msg.transfer_agent, msg.executor, msg.model)
    if not participants.signed_by(ctx, msg.transfer_agent, START_TAG, transfer,
                                  msg.transfer_signature):
        raise InvalidTransferSignature(msg.inference_id, msg.transfer_agent)
    effective = epochs.effective_epoch(ctx.store)
    group = epochs.get_group(ctx.store, effective)
    spec = None if group is None else epochs.model_snapshot(group, msg.model)
    if spec is None:
        raise UnknownModel(msg.model, effective)
    member = epochs.get_member(ctx.store, effective, msg.executor)
    if member is None or member.weight <= 0 or msg.model not in member.models:
        raise ExecutorNotServing(msg.executor, msg.model, effective)
    if record is not None:
        differ = tuple(f for f in SHARED_FIELDS if getattr(msg, f) != getattr(record, f))
        if differ:
            raise MismatchedInference(msg.inference_id, differ)
    return spec


def _new_record(ctx: Context, msg: Msg, spec: ModelSpec) -> InferenceRecord:
    """The record of a first message: price locked now (whole ngonka: the floor of the precise
    dynamic price), deadline set now, id remembered in the seen index."""
    expires_at = ctx.height + inference_params(ctx.store).expiration_blocks
    state.add_expiry(ctx.store, expires_at, msg.inference_id)
    state.mark_seen(ctx.store, msg.request_timestamp_ns, msg.inference_id)
    return InferenceRecord(
        id=msg.inference_id, status=state.STARTED, requested_by=msg.requested_by,
        transfer_agent=msg.transfer_agent, executor=msg.executor, model=msg.model,
        prompt_hash=msg.prompt_hash, request_timestamp_ns=msg.request_timestamp_ns,
        transfer_signature=msg.transfer_signature, first_seen_height=ctx.height,
        expires_at=expires_at, per_token_price=current_price(ctx.store, spec))


def handle_start(ctx: Context, msg: MsgStartInference) -> None:
    record = state.get_inference(ctx.store, msg.inference_id)
    spec = _check_common(ctx, msg, record, "start")
    if record is None:
        record = _new_record(ctx, msg, spec)
    escrow = (msg.prompt_tokens + msg.max_tokens) * record.per_token_price
    have = bank.balance(ctx.store, msg.requested_by)
    if have < escrow:
        raise DeveloperCannotPay(msg.inference_id, msg.requested_by, have, escrow)
    bank.escrow(ctx, msg.requested_by, "inference", escrow)
    record = msgspec.structs.replace(
        record, start_height=ctx.height, max_tokens=msg.max_tokens, escrow=escrow,
        # The executor's own count (from a Finish that came first) wins over the TA's.
        prompt_tokens=record.prompt_tokens if record.prompt_tokens > 0 else msg.prompt_tokens)
    ctx.emit("inference_started", inference_id=msg.inference_id.hex(),
             requested_by=msg.requested_by, executor=msg.executor, model=msg.model,
             escrow=escrow, per_token_price=record.per_token_price)
    _store_or_complete(ctx, record)


def handle_finish(ctx: Context, msg: MsgFinishInference) -> None:
    record = state.get_inference(ctx.store, msg.inference_id)
    spec = _check_common(ctx, msg, record, "finish")
    execution = execution_sign_bytes(msg.prompt_hash, msg.request_timestamp_ns,
                                     msg.transfer_agent, msg.executor, msg.model,
                                     msg.response_hash, msg.prompt_tokens, msg.completion_tokens)
    if not participants.signed_by(ctx, msg.executor, FINISH_TAG, execution,
                                  msg.executor_signature):
        raise InvalidExecutorSignature(msg.inference_id, msg.executor)
    if record is None:
        record = _new_record(ctx, msg, spec)
    record = msgspec.structs.replace(
        record, finish_height=ctx.height, response_hash=msg.response_hash,
        completion_tokens=msg.completion_tokens,
        prompt_tokens=msg.prompt_tokens if msg.prompt_tokens > 0 else record.prompt_tokens)
    _store_or_complete(ctx, record)


def _store_or_complete(ctx: Context, record: InferenceRecord) -> None:
    if record.start_seen and record.finish_seen:
        record = complete(ctx, record)
    state.put_inference(ctx.store, record)


def complete(ctx: Context, record: InferenceRecord) -> InferenceRecord:
    """Both messages are in: pay the executor min(actual, escrow) in work coins (moved from the
    "inference" to the "work" account), refund the rest to the developer, count the request in
    the effective epoch and fix the details validation will need."""
    cost = min((record.prompt_tokens + record.completion_tokens) * record.per_token_price,
               record.escrow)
    bank.transfer(ctx, module_address("inference"), module_account(ctx, "work"), cost)
    bank.release(ctx, "inference", record.requested_by, record.escrow - cost)
    executor = participants.require_participant(ctx.store, record.executor, "executor")
    stats = executor.stats
    participants.put_participant(ctx.store, msgspec.structs.replace(
        executor, coin_balance=executor.coin_balance + cost,
        # Every completed inference counts, paid or not (the reference counted paid ones only,
        # so free inference during the grace period broke status and reputation inputs).
        stats=msgspec.structs.replace(stats, inference_count=stats.inference_count + 1,
                                      earned=stats.earned + cost)))

    effective = epochs.effective_epoch(ctx.store)
    requests = epochs.count_request(ctx, effective)
    group = epochs.get_group(ctx.store, effective)
    member = epochs.get_member(ctx.store, effective, record.executor)
    assert group is not None and member is not None  # checked by the message just handled
    state.remove_expiry(ctx.store, record)
    state.index_completed(ctx.store, effective, record.id)
    state.add_usage(ctx.store, ctx.time_ns, record.model,
                    record.prompt_tokens + record.completion_tokens)
    ctx.emit("inference_finished", inference_id=record.id.hex(), executor=record.executor,
             epoch=effective, cost=cost, refund=record.escrow - cost)
    return msgspec.structs.replace(
        record, status=state.FINISHED, actual_cost=cost, epoch=effective,
        completed_height=ctx.height, executor_reputation=member.reputation,
        traffic_basis=max(requests, group.previous_epoch_requests),
        executor_power=member.weight, total_power=epochs.model_weight(group, record.model))


HANDLERS = {MsgStartInference: handle_start, MsgFinishInference: handle_finish}
