"""End of block: expire the open inferences whose deadline has come.

A record due at height h (first_seen_height + expiration_blocks) that is not complete by the end
of block h becomes "expired": the developer gets its whole escrow back (if the Start was seen)
and, if the executor's Finish is what is missing, the executor gets a missed request. Any later
message for it is refused (807 while the record is kept: until its request time leaves the
window, see window.py). This never pays an executor.
"""

from __future__ import annotations

import msgspec

from chain.app.bank import state as bank
from chain.app.context import Context
from chain.app.inference import state
from chain.app.participants import state as participants


def end_block(ctx: Context) -> None:
    # `<=` rather than `==`: a deadline is never skipped even if a block's hook did not run.
    for key, inference_id in state.due_expiries(ctx.store, ctx.height):
        ctx.store.delete(key)
        record = state.get_inference(ctx.store, inference_id)
        if record is None or record.status != state.STARTED:
            continue
        refund = record.escrow if record.start_seen else 0
        bank.release(ctx, "inference", record.requested_by, refund)
        missed = not record.finish_seen
        if missed:
            executor = participants.get_participant(ctx.store, record.executor)
            if executor is not None:
                participants.put_participant(ctx.store, msgspec.structs.replace(
                    executor, stats=msgspec.structs.replace(
                        executor.stats, missed_requests=executor.stats.missed_requests + 1)))
        expired = msgspec.structs.replace(record, status=state.EXPIRED, actual_cost=0)
        # The expired record answers a late message with 807 while its id is in the seen index;
        # if its request time already left the window, a late message is refused as too old
        # (810) and the record is not kept (nothing else would ever delete it).
        kept = state.is_seen(ctx.store, record.request_timestamp_ns, inference_id)
        if kept:
            state.put_inference(ctx.store, expired)
        else:
            state.delete_record(ctx.store, expired)
        ctx.emit("inference_expired", inference_id=inference_id.hex(),
                 executor=record.executor, refund=refund, missed=str(missed).lower(),
                 kept=str(kept).lower())
