"""State of the gov module.

Keys (ids and heights as u64 big-endian, so that scans run in numeric order):
    gov/next_id                              -> int, the next proposal id (from 1)
    gov/proposal/<u64 id>                    -> Proposal
    gov/deposit/<u64 id>/<depositor>         -> int, coins held in the gov module account
    gov/vote/<u64 id>/<voter>                -> VoteOption string
    gov/deposit_queue/<u64 end><u64 id>      -> b"" while the proposal waits for deposits
    gov/voting_queue/<u64 end><u64 id>       -> b"" while the proposal is being voted on
"""

from __future__ import annotations

import msgspec

from chain.app.context import Context, get_int, get_value, put_int, put_value, u64
from chain.app.gov.tally import TallyResult
from chain.store.kv import KVReader, Overlay, scan_prefix
from chain.types.msgs.params import ParamChange

NEXT_ID = b"gov/next_id"
PROPOSAL = b"gov/proposal/"
DEPOSIT = b"gov/deposit/"
VOTE = b"gov/vote/"
DEPOSIT_QUEUE = b"gov/deposit_queue/"
VOTING_QUEUE = b"gov/voting_queue/"

MODULE_NAME = "gov"

# Proposal statuses.
DEPOSIT_PERIOD = "deposit_period"
VOTING_PERIOD = "voting_period"
PASSED = "passed"  # voted through and its changes applied
REJECTED = "rejected"  # voted down, vetoed, or no quorum (result_log says which)
FAILED = "failed"  # voted through but a change did not fit its params type: nothing applied
EXPIRED = "expired"  # the deposit period ended below min_deposit


class Proposal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: int
    proposer: str
    title: str
    description: str
    changes: tuple[ParamChange, ...]
    status: str
    submit_height: int
    deposit_end_height: int
    total_deposit: int
    voting_start_height: int | None = None
    # Last height at which votes count; the tally runs at the end of this block.
    voting_end_height: int | None = None
    tally: TallyResult | None = None
    result_log: str = ""


class DepositRecord(msgspec.Struct, frozen=True):
    depositor: str
    amount: int


class VoteRecord(msgspec.Struct, frozen=True):
    voter: str
    option: str


def next_id(store: Overlay) -> int:
    proposal_id = get_int(store, NEXT_ID) or 1
    put_int(store, NEXT_ID, proposal_id + 1)
    return proposal_id


def get_proposal(store: KVReader, proposal_id: int) -> Proposal | None:
    return get_value(store, PROPOSAL + u64(proposal_id), Proposal)


def put_proposal(store: Overlay, proposal: Proposal) -> None:
    put_value(store, PROPOSAL + u64(proposal.id), proposal)


def proposals(store: KVReader, status: str | None = None) -> list[Proposal]:
    everything = [msgspec.msgpack.decode(v, type=Proposal)
                  for _, v in scan_prefix(store, PROPOSAL)]
    return [p for p in everything if status is None or p.status == status]


def add_deposit(store: Overlay, proposal_id: int, depositor: str, amount: int) -> None:
    key = DEPOSIT + u64(proposal_id) + b"/" + depositor.encode()
    put_int(store, key, get_int(store, key) + amount)


def deposits(store: KVReader, proposal_id: int) -> list[DepositRecord]:
    prefix = DEPOSIT + u64(proposal_id) + b"/"
    return [DepositRecord(depositor=k[len(prefix):].decode(),
                          amount=msgspec.msgpack.decode(v, type=int))
            for k, v in scan_prefix(store, prefix)]


def clear_deposits(store: Overlay, proposal_id: int) -> None:
    for key, _ in scan_prefix(store, DEPOSIT + u64(proposal_id) + b"/"):
        store.delete(key)


def set_vote(store: Overlay, proposal_id: int, voter: str, option: str) -> None:
    put_value(store, VOTE + u64(proposal_id) + b"/" + voter.encode(), option)


def votes(store: KVReader, proposal_id: int) -> list[VoteRecord]:
    prefix = VOTE + u64(proposal_id) + b"/"
    return [VoteRecord(voter=k[len(prefix):].decode(), option=msgspec.msgpack.decode(v, type=str))
            for k, v in scan_prefix(store, prefix)]


def enqueue(store: Overlay, queue: bytes, end_height: int, proposal_id: int) -> None:
    store.set(queue + u64(end_height) + u64(proposal_id), b"")


def dequeue(store: Overlay, queue: bytes, end_height: int, proposal_id: int) -> None:
    store.delete(queue + u64(end_height) + u64(proposal_id))


def due(store: KVReader, queue: bytes, height: int) -> list[tuple[int, int]]:
    """(end height, proposal id) of the queue entries ending at or before `height`."""
    entries = store.scan(queue, queue + u64(height + 1))
    n = len(queue)
    return [(int.from_bytes(k[n:n + 8], "big"), int.from_bytes(k[n + 8:], "big"))
            for k, _ in entries]


def emit_status(ctx: Context, proposal: Proposal) -> None:
    ctx.emit("proposal_status", proposal_id=proposal.id, status=proposal.status,
             log=proposal.result_log)
