"""The messages peers exchange after the handshake: one tagged msgspec union, one frame each.

Gossip (relayed from peer to peer, de-duplicated by their hash): `TxMsg`, `ProposalMsg`,
`VoteMsg`. Block sync and status (point to point, never relayed): `StatusMsg`, `BlockRequest`,
`BlockResponse`, `NoBlockResponse`. `Ping` keeps an idle connection provably alive and never
leaves `chain.p2p`.

Decoding goes through `chain.types.codec.decode` (canonical MessagePack), so one message has one
byte string and one hash. Signatures, heights and whether a block fits the chain are checked by
the consensus, mempool and block sync that receive these; this module only says what a well-formed
message looks like, and `decode_message` raises BadMessage and nothing else.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from chain.crypto.hashing import blake3_256
from chain.p2p.errors import BadMessage
from chain.types.block import MAX_BLOCK_BYTES, Block, RawTx
from chain.types.codec import DecodeError, decode, encode
from chain.types.commit import MAX_COMMIT_BYTES, Commit
from chain.types.common import MAX_INT64, Height
from chain.types.evidence import DuplicateVoteEvidence
from chain.types.vote import Proposal, Vote

# The largest message is a BlockResponse: a full block, its commit and a little framing.
MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + MAX_COMMIT_BYTES + (64 << 10)

_TAGGED = {"frozen": True, "forbid_unknown_fields": True, "tag_field": "type"}


class TxMsg(msgspec.Struct, tag="p2p/Tx", **_TAGGED):
    """A raw transaction (the mempool decodes and checks it)."""

    tx: RawTx


class ProposalMsg(msgspec.Struct, tag="p2p/Proposal", **_TAGGED):
    """A signed proposal with the whole block it proposes (no block parts yet)."""

    proposal: Proposal
    block: Block


class VoteMsg(msgspec.Struct, tag="p2p/Vote", **_TAGGED):
    vote: Vote


class EvidenceMsg(msgspec.Struct, tag="p2p/Evidence", **_TAGGED):
    """Proof that a validator double-signed, gossiped so that any proposer can put it on chain."""

    evidence: DuplicateVoteEvidence


class StatusMsg(msgspec.Struct, tag="p2p/Status", **_TAGGED):
    """The sender's latest committed height and the lowest it still serves (0, 0 when empty)."""

    height: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
    base_height: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]

    def __post_init__(self) -> None:
        if self.base_height > self.height:
            raise ValueError(f"base_height {self.base_height} above height {self.height}")


class BlockRequest(msgspec.Struct, tag="p2p/BlockRequest", **_TAGGED):
    height: Height


class BlockResponse(msgspec.Struct, tag="p2p/BlockResponse", **_TAGGED):
    """A committed block and the commit that finalised it (block sync)."""

    block: Block
    commit: Commit


class NoBlockResponse(msgspec.Struct, tag="p2p/NoBlockResponse", **_TAGGED):
    height: Height


class Ping(msgspec.Struct, tag="p2p/Ping", **_TAGGED):
    """Sent on an idle connection so the other side's read timeout sees it alive."""


Message = Union[  # noqa: UP007 - a runtime union object msgspec can decode into
    TxMsg, ProposalMsg, VoteMsg, EvidenceMsg, StatusMsg, BlockRequest, BlockResponse,
    NoBlockResponse, Ping
]
# Messages relayed peer to peer, and therefore de-duplicated by hash.
GOSSIP_TYPES = (TxMsg, ProposalMsg, VoteMsg, EvidenceMsg)


def encode_message(msg: Message) -> bytes:
    return encode(msg)


def decode_message(data: bytes, *, max_size: int = MAX_MESSAGE_BYTES) -> Message:
    """A message from a frame's plaintext; BadMessage (wrapping the DecodeError) otherwise."""
    try:
        return decode(data, Message, max_size=max_size)  # type: ignore[arg-type]
    except DecodeError as e:
        raise BadMessage(str(e)) from e


def message_hash(encoded: bytes) -> bytes:
    """The gossip de-duplication key: BLAKE3 of the canonical bytes."""
    return blake3_256(encoded)


def is_gossip(msg: object) -> bool:
    return isinstance(msg, GOSSIP_TYPES)
