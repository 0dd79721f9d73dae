"""State of the inference module: one record per inference, its expiry queue, the index of
completed inferences by epoch, the index of request ids seen inside the request time window, the
per-model price and the token usage the price follows.

Keys:
    inference/record/<64-byte id>               -> InferenceRecord
    inference/expiry/<u64 deadline><id>         -> b""  (open records only: removed on completion)
    inference/by_epoch/<u64 epoch><id>          -> b""  (completed records, by attributed epoch)
    inference/seen/<u64 request_timestamp_ns><id> -> b"" (every id whose first message came, until
                                                         its request time leaves the window)
    inference/seen_floor                        -> int  (every seen key below it is deleted: no
                                                         first message older than it is accepted)
    inference/price/<model>                     -> int  (dynamic price in millionths of a ngonka
                                                         per token; absent during the grace
                                                         period and before the first update)
    inference/usage/<u64 time_ns><model>        -> int  (tokens completed at that block time)

The expiry queue holds exactly the open records (first message seen, neither complete nor
expired), so the escrow the "inference" module account must hold is the sum over that queue.
Other modules (validation) read and update records through `get_inference`/`put_inference` and
never touch the queue or the index; this module never decides validation outcomes.

Retention: records are deleted once nothing can read or replay them. A completed record goes
with its epoch (`prune_epoch`, two epochs later, when no claim can read it) or, if it was still
voting then, when its vote resolves (`prune_record`); an expired record goes with its seen key.
Replays stay refused: while the seen key lives the id is a duplicate, afterwards the request
time is outside the window. Pruning never touches an open record, escrow or any coin.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from chain.app.context import Context, get_value, put_value, u64
from chain.store.kv import KVReader, Overlay, prefix_end, scan_prefix

RECORD = b"inference/record/"
EXPIRY = b"inference/expiry/"
BY_EPOCH = b"inference/by_epoch/"
PRICE = b"inference/price/"
USAGE = b"inference/usage/"
SEEN = b"inference/seen/"
SEEN_FLOOR = b"inference/seen_floor"

Status = Literal["started", "finished", "validated", "voting", "invalidated", "expired"]
# Open: one or both messages in, not yet completed (a Finish that came first is "started" too).
STARTED: Status = "started"
# Completed (both messages in, paid); validation may move it on to the next three.
FINISHED: Status = "finished"
VALIDATED: Status = "validated"
VOTING: Status = "voting"
INVALIDATED: Status = "invalidated"
# Not completed within expiration_blocks of its first message: refunded, never completes.
EXPIRED: Status = "expired"
COMPLETED_STATUSES: frozenset[str] = frozenset({FINISHED, VALIDATED, VOTING, INVALIDATED})
# Completed and settled for good: prunable with their epoch (a VOTING record waits for its vote).
PRUNABLE_STATUSES: frozenset[str] = frozenset({FINISHED, VALIDATED, INVALIDATED})


class InferenceRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One inference as the chain knows it. Fields a message has not brought yet keep their
    zero defaults; `start_height`/`finish_height` > 0 say which messages were seen."""

    id: bytes                       # the developer's signature over request_sign_bytes
    status: Status
    requested_by: str
    transfer_agent: str
    executor: str
    model: str
    prompt_hash: bytes
    request_timestamp_ns: int
    transfer_signature: bytes
    first_seen_height: int
    expires_at: int                 # first_seen_height + expiration_blocks (then)
    per_token_price: int            # whole ngonka, locked at the first message
    response_hash: bytes = b""
    prompt_tokens: int = 0          # the executor's count if it gave one (> 0), else the TA's
    completion_tokens: int = 0
    max_tokens: int = 0
    escrow: int = 0                 # taken from the developer at Start
    actual_cost: int = 0            # paid to the executor at completion (<= escrow)
    start_height: int = 0
    finish_height: int = 0
    # Validation details, set at completion (the effective epoch then).
    epoch: int = 0
    completed_height: int = 0
    executor_reputation: int = 0
    traffic_basis: int = 0          # max(requests of the epoch so far, previous epoch's)
    executor_power: int = 0         # executor's weight in the epoch
    total_power: int = 0            # the model sub-group's total weight
    validated_by: tuple[str, ...] = ()

    @property
    def start_seen(self) -> bool:
        return self.start_height > 0

    @property
    def finish_seen(self) -> bool:
        return self.finish_height > 0

    @property
    def completed(self) -> bool:
        return self.status in COMPLETED_STATUSES


# -- records ---------------------------------------------------------------------------------

def get_inference(store: KVReader, inference_id: bytes) -> InferenceRecord | None:
    return get_value(store, RECORD + inference_id, InferenceRecord)


def put_inference(store: Overlay, record: InferenceRecord) -> None:
    """Write a record. Only the inference module changes status to or from started/expired and
    the money fields; validation changes status among the completed ones and validated_by."""
    put_value(store, RECORD + record.id, record)


def add_expiry(store: Overlay, deadline: int, inference_id: bytes) -> None:
    store.set(EXPIRY + u64(deadline) + inference_id, b"")


def remove_expiry(store: Overlay, record: InferenceRecord) -> None:
    store.delete(EXPIRY + u64(record.expires_at) + record.id)


def due_expiries(store: KVReader, height: int) -> list[tuple[bytes, bytes]]:
    """(queue key, id) of open records whose deadline is <= `height`, in key order."""
    return [(key, key[len(EXPIRY) + 8:]) for key, _ in store.scan(EXPIRY, EXPIRY + u64(height + 1))]


def open_records(store: KVReader) -> list[InferenceRecord]:
    """Every open record (in the expiry queue), in deadline then id order."""
    out = []
    for key, _ in scan_prefix(store, EXPIRY):
        record = get_inference(store, key[len(EXPIRY) + 8:])
        if record is not None:
            out.append(record)
    return out


def open_escrow_total(store: KVReader) -> int:
    """Escrow held for open records: what the "inference" module account must hold."""
    return sum(r.escrow for r in open_records(store) if r.start_seen)


def index_completed(store: Overlay, epoch: int, inference_id: bytes) -> None:
    store.set(BY_EPOCH + u64(epoch) + inference_id, b"")


def epoch_ids(store: KVReader, epoch: int) -> list[bytes]:
    """Ids of the inferences completed while `epoch` was effective and not yet pruned, sorted."""
    prefix = BY_EPOCH + u64(epoch)
    return [key[len(prefix):] for key, _ in scan_prefix(store, prefix)]


def completed_in_epoch(store: KVReader, epoch: int) -> list[InferenceRecord]:
    """The inferences completed while `epoch` was effective, sorted by id."""
    prefix = BY_EPOCH + u64(epoch)
    out = []
    for key, _ in scan_prefix(store, prefix):
        record = get_inference(store, key[len(prefix):])
        if record is not None:
            out.append(record)
    return out


# -- the seen index (replay protection) -----------------------------------------------------

def _seen_key(request_ns: int, inference_id: bytes) -> bytes:
    return SEEN + u64(request_ns) + inference_id


def mark_seen(store: Overlay, request_ns: int, inference_id: bytes) -> None:
    store.set(_seen_key(request_ns, inference_id), b"")


def is_seen(store: KVReader, request_ns: int, inference_id: bytes) -> bool:
    return store.get(_seen_key(request_ns, inference_id)) is not None


def seen_floor(store: KVReader) -> int:
    """Request times below this have had their seen keys deleted (0: none yet)."""
    return get_value(store, SEEN_FLOOR, int) or 0


def forget_seen_before(store: Overlay, before_ns: int) -> list[bytes]:
    """Delete the seen keys with request time < `before_ns` and raise the floor to it; the ids
    forgotten, in key order."""
    ids = []
    for key, _ in store.scan(SEEN, SEEN + u64(before_ns)):
        store.delete(key)
        ids.append(key[len(SEEN) + 8:])
    if ids:
        put_value(store, SEEN_FLOOR, before_ns)
    return ids


# -- pruning ---------------------------------------------------------------------------------

def delete_record(store: Overlay, record: InferenceRecord) -> None:
    """Delete a record that is no longer open (expired, or completed and settled) with its
    by_epoch key. Never for an open record: its escrow is accounted for by the expiry queue."""
    assert record.status != STARTED, "an open record is never deleted"
    store.delete(RECORD + record.id)
    if record.completed:
        store.delete(BY_EPOCH + u64(record.epoch) + record.id)


def prune_epoch(ctx: Context, epoch: int) -> None:
    """Delete the completed records of `epoch` (finished, validated, invalidated) and their
    by_epoch keys; VOTING records stay (the vote is open, a hold may wait on it) and are
    deleted when their vote resolves (validation.votes). Called by the epoch clock when `epoch`
    can no longer be claimed. Run validation's prune_epoch first: it finds the epoch's votes
    through this index."""
    prefix = BY_EPOCH + u64(epoch)
    pruned = kept = 0
    for key, _ in scan_prefix(ctx.store, prefix):
        record = get_inference(ctx.store, key[len(prefix):])
        if record is None:
            ctx.store.delete(key)
        elif record.status in PRUNABLE_STATUSES:
            delete_record(ctx.store, record)
            pruned += 1
        else:
            kept += 1
    ctx.emit("inference_pruned", epoch=epoch, records=pruned, kept_voting=kept)


# -- prices and usage ------------------------------------------------------------------------

def stored_price(store: KVReader, model: str) -> int | None:
    """The dynamic price of `model` in millionths of a ngonka per token (see pricing)."""
    return get_value(store, PRICE + model.encode(), int)


def put_price(store: Overlay, model: str, price: int) -> None:
    put_value(store, PRICE + model.encode(), price)


def add_usage(store: Overlay, time_ns: int, model: str, tokens: int) -> None:
    """Count `tokens` completed for `model` at block time `time_ns` (several per block add up)."""
    if tokens == 0:
        return
    key = USAGE + u64(time_ns) + model.encode()
    put_value(store, key, (get_value(store, key, int) or 0) + tokens)


def usage_since(store: KVReader, since_ns: int) -> dict[str, int]:
    """model -> tokens completed at block times >= `since_ns`."""
    out: dict[str, int] = {}
    for key, value in store.scan(USAGE + u64(since_ns), prefix_end(USAGE)):
        model = key[len(USAGE) + 8:].decode()
        out[model] = out.get(model, 0) + msgspec.msgpack.decode(value, type=int)
    return out


def prune_usage(store: Overlay, before_ns: int) -> None:
    """Forget usage older than `before_ns`: it can never be inside a window again."""
    for key, _ in store.scan(USAGE, USAGE + u64(before_ns)):
        store.delete(key)
