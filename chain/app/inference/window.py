"""The request time window: the chain-side bound on replays of a developer-signed request.

An inference id is the developer's signature over (prompt hash, request time, transfer agent),
so the same signed request could be sent again once the chain has forgotten it. The chain
therefore accepts a first message (Start or Finish) only while its request time is inside
[block time - max_request_age_s, block time + max_request_advance_s], and remembers every id
it saw (inference/seen, keyed by request time) until that time leaves the window: a replay is
either a duplicate of a seen id or too old. A second message for an existing record is not
re-checked (it may come up to expiration_blocks later).

At the start of every block the seen keys that fell out of the window are deleted, and with
them the expired records they guard (nothing can reach those any more). This module never
touches an open record, escrow or coins.
"""

from __future__ import annotations

from chain.app.context import Context
from chain.app.inference import state
from chain.app.inference.errors import RequestFromFuture, RequestTooOld
from chain.app.inference.pricing import SECOND_NS, inference_params
from chain.store.kv import KVReader


def earliest_request_ns(store: KVReader, time_ns: int) -> int:
    """The oldest request time a first message may carry at block time `time_ns`. The floor
    keeps the window closed on ids already forgotten even if governance raises the age."""
    age = inference_params(store).max_request_age_s * SECOND_NS
    return max(time_ns - age, state.seen_floor(store), 0)


def check_request_time(ctx: Context, inference_id: bytes, request_ns: int) -> None:
    """Refuse a first message whose request time is outside the window (810 / 811)."""
    earliest = earliest_request_ns(ctx.store, ctx.time_ns)
    if request_ns < earliest:
        raise RequestTooOld(inference_id, request_ns, ctx.time_ns, earliest)
    latest = ctx.time_ns + inference_params(ctx.store).max_request_advance_s * SECOND_NS
    if request_ns > latest:
        raise RequestFromFuture(inference_id, request_ns, ctx.time_ns, latest)


def begin_block(ctx: Context) -> None:
    """Forget the ids whose request time left the window, and the expired records among them."""
    age = inference_params(ctx.store).max_request_age_s * SECOND_NS
    cutoff = ctx.time_ns - age
    if cutoff <= state.seen_floor(ctx.store):
        return
    forgotten = state.forget_seen_before(ctx.store, cutoff)
    expired = 0
    for inference_id in forgotten:
        record = state.get_inference(ctx.store, inference_id)
        # A completed record goes with its epoch, an open one when it expires (expiry.py).
        if record is not None and record.status == state.EXPIRED:
            state.delete_record(ctx.store, record)
            expired += 1
    if forgotten:
        ctx.emit("inference_seen_pruned", before_ns=cutoff, seen=len(forgotten),
                 expired_records=expired)
