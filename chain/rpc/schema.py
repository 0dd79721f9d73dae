"""The JSON shapes of the chain RPC: request and response bodies, and WebSocket event frames.

One convention for binary values, everywhere in the RPC:
  * hashes, ids, public keys and signatures are lowercase **hex** strings (what people paste and
    compare);
  * raw transaction bytes are **base64** (msgspec's spelling of `bytes` in JSON; they are big and
    only machines read them).

These structs are the schema: the server encodes them with `chain.types.codec.to_json`, the client
(`chain.rpc.client`) decodes responses into the same types. The `*_view` functions turn the
node's domain values (`chain.rpc.node_view`, `chain.types`) into them. No I/O here.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import msgspec

from chain.app.abci import OK, Event, TxResult
from chain.rpc.node_view import BlockEvents, BroadcastMode, BroadcastResult, NodeStatus, TxRecord
from chain.types.block import Block, BlockHeader
from chain.types.block_id import BlockID
from chain.types.commit import Commit
from chain.types.evidence import DuplicateVoteEvidence
from chain.types.tx import tx_hash


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    # A stable slug clients can switch on: bad_request, not_found, too_large, invalid_tx, ...
    code: str
    message: str
    # For query_failed: the application's result code.
    app_code: int | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    """Every non-2xx response body: {"error": {"code": ..., "message": ...}}."""

    error: ErrorDetail


# -- requests --------------------------------------------------------------------------------


class BroadcastRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """POST /txs body: the raw tx in base64 and how long to wait."""

    tx: bytes
    mode: BroadcastMode = "sync"


# -- responses -------------------------------------------------------------------------------


class ValidatorView(msgspec.Struct, frozen=True):
    address: str
    pubkey: str
    voting_power: int


class StatusView(msgspec.Struct, frozen=True):
    chain_id: str
    node_id: str
    latest_height: int
    latest_block_hash: str
    latest_app_hash: str
    latest_block_time_ns: int
    catching_up: bool
    validator: ValidatorView | None = None


class PartSetHeaderView(msgspec.Struct, frozen=True):
    total: int
    root: str


class BlockIDView(msgspec.Struct, frozen=True):
    hash: str
    parts: PartSetHeaderView


class HeaderView(msgspec.Struct, frozen=True):
    chain_id: str
    height: int
    time_ns: int
    last_block_id: BlockIDView | None
    last_commit_hash: str
    data_hash: str
    validators_hash: str
    next_validators_hash: str
    app_hash: str
    last_results_hash: str
    evidence_hash: str
    proposer: str


class CommitSigView(msgspec.Struct, frozen=True):
    flag: Literal["absent", "commit", "nil"]
    validator: str
    time_ns: int
    signature: str


class CommitView(msgspec.Struct, frozen=True):
    height: int
    round: int
    block_id: BlockIDView
    signatures: tuple[CommitSigView, ...]


class EvidenceView(msgspec.Struct, frozen=True):
    """One duplicate-vote evidence a block carries: who signed two votes for (height, round,
    type), and the two block hashes (None for a nil vote)."""

    hash: str
    validator: str
    height: int
    round: int
    type: Literal["prevote", "precommit"]
    block_hashes: tuple[str | None, str | None]


class BlockView(msgspec.Struct, frozen=True):
    """GET /blocks/{h}: the block's hash, header, raw txs (base64) and their hashes (hex), the
    last commit, and the evidence it carries."""

    hash: str
    header: HeaderView
    txs: tuple[bytes, ...]
    tx_hashes: tuple[str, ...]
    last_commit: CommitView | None
    evidence: tuple[EvidenceView, ...] = ()


class AttributeView(msgspec.Struct, frozen=True):
    key: str
    value: str


class EventView(msgspec.Struct, frozen=True):
    type: str
    attributes: tuple[AttributeView, ...] = ()


class TxResultView(msgspec.Struct, frozen=True):
    code: int
    log: str
    codespace: str
    events: tuple[EventView, ...]


class TxView(msgspec.Struct, frozen=True):
    """GET /txs/{hash}: a committed tx, where it is and what it did."""

    hash: str
    height: int
    index: int
    tx: bytes
    result: TxResultView


class BroadcastView(msgspec.Struct, frozen=True):
    """POST /txs: check_tx's verdict; for mode "commit" also where the tx landed (or nulls)."""

    hash: str
    mode: BroadcastMode
    code: int
    log: str
    codespace: str
    height: int | None = None
    result: TxResultView | None = None

    @property
    def accepted(self) -> bool:
        return self.code == OK


class QueryView(msgspec.Struct, frozen=True):
    """GET /query/{path}: the application's JSON answer, embedded as is."""

    height: int
    value: msgspec.Raw


class FrameEvent(msgspec.Struct, frozen=True):
    """One event of a frame: which tx emitted it (hex, null for the block itself) and what."""

    tx_hash: str | None
    type: str
    attributes: tuple[AttributeView, ...] = ()


class EventFrame(msgspec.Struct, frozen=True):
    """One WebSocket message of /events: all the (filtered) events of one committed height.

    A frame is sent for every height, even when no event passes the filter, so that a
    subscriber always knows how far it has read: it resumes from `height + 1`.
    """

    height: int
    block_hash: str
    time_ns: int
    events: tuple[FrameEvent, ...] = ()


# -- conversions -----------------------------------------------------------------------------


def _hex(b: bytes) -> str:
    return b.hex()


def status_view(s: NodeStatus) -> StatusView:
    v = s.validator
    return StatusView(
        chain_id=s.chain_id, node_id=_hex(s.node_id), latest_height=s.latest_height,
        latest_block_hash=_hex(s.latest_block_hash), latest_app_hash=_hex(s.latest_app_hash),
        latest_block_time_ns=s.latest_block_time_ns, catching_up=s.catching_up,
        validator=None if v is None else ValidatorView(_hex(v.address), _hex(v.pubkey),
                                                       v.voting_power),
    )


def block_id_view(b: BlockID) -> BlockIDView:
    return BlockIDView(_hex(b.hash), PartSetHeaderView(b.parts.total, _hex(b.parts.root)))


def header_view(h: BlockHeader) -> HeaderView:
    return HeaderView(
        chain_id=h.chain_id, height=h.height, time_ns=h.time_ns,
        last_block_id=None if h.last_block_id is None else block_id_view(h.last_block_id),
        last_commit_hash=_hex(h.last_commit_hash), data_hash=_hex(h.data_hash),
        validators_hash=_hex(h.validators_hash),
        next_validators_hash=_hex(h.next_validators_hash), app_hash=_hex(h.app_hash),
        last_results_hash=_hex(h.last_results_hash), evidence_hash=_hex(h.evidence_hash),
        proposer=_hex(h.proposer),
    )


def commit_view(c: Commit) -> CommitView:
    sigs = tuple(CommitSigView(s.flag.name.lower(), _hex(s.validator), s.time_ns,  # type: ignore[arg-type]
                               _hex(s.signature)) for s in c.signatures)
    return CommitView(c.height, c.round, block_id_view(c.block_id), sigs)


def evidence_view(e: DuplicateVoteEvidence) -> EvidenceView:
    a, b = e.vote_a, e.vote_b
    return EvidenceView(
        hash=_hex(e.hash), validator=_hex(e.validator), height=a.height, round=a.round,
        type=a.type.name.lower(),  # type: ignore[arg-type]
        block_hashes=tuple(None if v.block_id is None else _hex(v.block_id.hash)
                           for v in (a, b)))  # type: ignore[arg-type]


def block_view(b: Block) -> BlockView:
    return BlockView(
        hash=_hex(b.hash), header=header_view(b.header), txs=b.txs,
        tx_hashes=tuple(_hex(tx_hash(t)) for t in b.txs),
        last_commit=None if b.last_commit is None else commit_view(b.last_commit),
        evidence=tuple(evidence_view(e) for e in b.evidence),
    )


def event_view(e: Event) -> EventView:
    return EventView(e.type, tuple(AttributeView(a.key, a.value) for a in e.attributes))


def tx_result_view(r: TxResult) -> TxResultView:
    return TxResultView(r.code, r.log, r.codespace, tuple(event_view(e) for e in r.events))


def tx_view(tx_hash_: bytes, rec: TxRecord) -> TxView:
    return TxView(_hex(tx_hash_), rec.height, rec.index, rec.raw, tx_result_view(rec.result))


def broadcast_view(mode: BroadcastMode, r: BroadcastResult) -> BroadcastView:
    return BroadcastView(
        hash=_hex(r.hash), mode=mode, code=r.code, log=r.log, codespace=r.codespace,
        height=r.height, result=None if r.result is None else tx_result_view(r.result),
    )


def event_frame(be: BlockEvents, types: Collection[str] = ()) -> EventFrame:
    """The frame for one height, keeping only events whose type is in `types` (all if empty)."""
    events = tuple(
        FrameEvent(None if ie.tx_hash is None else _hex(ie.tx_hash), ie.event.type,
                   tuple(AttributeView(a.key, a.value) for a in ie.event.attributes))
        for ie in be.events
        if not types or ie.event.type in types
    )
    return EventFrame(be.height, _hex(be.block_hash), be.time_ns, events)
