"""Signed consensus messages: prevotes, precommits and proposals (Tendermint-shaped).

A validator signs a sign doc, never the message itself: `vote_sign_bytes` and
`proposal_sign_bytes` are the canonical MessagePack of a tagged struct ("gonka/Vote",
"gonka/Proposal") holding the chain id and every field but the signature. The tag keeps a vote
signature from ever passing as a proposal signature and vice versa; the chain id keeps it from
counting on another chain. Validators are named by their 20-byte ed25519 id (`node_id`).

This module signs and checks single messages; vote sets, 2/3 majorities and the rule that a node
never signs twice for one height/round/step belong to `chain.consensus`. No I/O, no state.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from chain.crypto import ed25519
from chain.types.block_id import BlockID
from chain.types.codec import decode, encode, validated
from chain.types.common import ChainId, Height, NodeId, Round, Signature, TimeNs

# A vote or proposal is a few hundred bytes; anything near this is not one.
MAX_VOTE_BYTES = 1024
MAX_PROPOSAL_BYTES = 1024
MAX_VALIDATOR_INDEX = 2**31 - 1


class VoteType(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


class Vote(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A prevote or precommit for `block_id`, or for nil when `block_id` is None."""

    type: VoteType
    height: Height
    round: Round
    block_id: BlockID | None
    time_ns: TimeNs
    validator: NodeId
    validator_index: Annotated[int, msgspec.Meta(ge=0, le=MAX_VALIDATOR_INDEX)]
    signature: Signature


class VoteSignDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
                  tag="gonka/Vote"):
    """What a validator signs for a vote: the vote without its signature, plus the chain id."""

    chain_id: ChainId
    # `vote_type`, not `type`: the tag field already holds "type".
    vote_type: VoteType
    height: Height
    round: Round
    block_id: BlockID | None
    time_ns: TimeNs
    validator: NodeId
    validator_index: int


class Proposal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The proposer's block for (`height`, `round`); `pol_round` is the round of the proof of
    lock it re-proposes from, or -1 for a fresh block."""

    height: Height
    round: Round
    pol_round: Annotated[int, msgspec.Meta(ge=-1, le=2**31 - 1)]
    block_id: BlockID
    time_ns: TimeNs
    proposer: NodeId
    signature: Signature

    def __post_init__(self) -> None:
        if self.pol_round >= self.round:
            raise ValueError(f"pol_round {self.pol_round} must be below round {self.round}")


class ProposalSignDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                      tag_field="type", tag="gonka/Proposal"):
    """What a proposer signs: the proposal without its signature, plus the chain id."""

    chain_id: ChainId
    height: Height
    round: Round
    pol_round: int
    block_id: BlockID
    time_ns: TimeNs
    proposer: NodeId


def vote_sign_bytes(chain_id: str, vote: Vote) -> bytes:
    return encode(VoteSignDoc(
        chain_id=chain_id, vote_type=vote.type, height=vote.height, round=vote.round,
        block_id=vote.block_id, time_ns=vote.time_ns, validator=vote.validator,
        validator_index=vote.validator_index,
    ))


def proposal_sign_bytes(chain_id: str, proposal: Proposal) -> bytes:
    return encode(ProposalSignDoc(
        chain_id=chain_id, height=proposal.height, round=proposal.round,
        pol_round=proposal.pol_round, block_id=proposal.block_id, time_ns=proposal.time_ns,
        proposer=proposal.proposer,
    ))


def _check_signer(key: ed25519.PrivateKey, named: bytes, field: str) -> None:
    if key.id != named:
        raise ValueError(f"{field} is {named.hex()} but the key's id is {key.id.hex()}")


def sign_vote(chain_id: str, vote: Vote, key: ed25519.PrivateKey) -> Vote:
    """`vote` with `key`'s signature (any signature it had is replaced).

    Raises ValueError if `vote.validator` is not `key`'s id and DecodeError if the vote breaks a
    wire rule; pass `signature=bytes(64)` when building the unsigned vote.
    """
    _check_signer(key, vote.validator, "vote.validator")
    signed = msgspec.structs.replace(vote, signature=key.sign(vote_sign_bytes(chain_id, vote)))
    return validated(signed, max_size=MAX_VOTE_BYTES)


def sign_proposal(chain_id: str, proposal: Proposal, key: ed25519.PrivateKey) -> Proposal:
    """`proposal` with `key`'s signature; the same rules as `sign_vote`."""
    _check_signer(key, proposal.proposer, "proposal.proposer")
    sig = key.sign(proposal_sign_bytes(chain_id, proposal))
    return validated(msgspec.structs.replace(proposal, signature=sig), max_size=MAX_PROPOSAL_BYTES)


def _verify(pubkey: bytes, named: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        if ed25519.node_id(pubkey) != named:
            return False
    except ed25519.InvalidNodeKey:
        return False
    return ed25519.verify(pubkey, msg, sig)


def verify_vote(chain_id: str, vote: Vote, pubkey: bytes) -> bool:
    """True iff `pubkey` is `vote.validator`'s key and signed this vote on `chain_id`."""
    return _verify(pubkey, vote.validator, vote_sign_bytes(chain_id, vote), vote.signature)


def verify_proposal(chain_id: str, proposal: Proposal, pubkey: bytes) -> bool:
    """True iff `pubkey` is `proposal.proposer`'s key and signed this proposal on `chain_id`."""
    return _verify(pubkey, proposal.proposer, proposal_sign_bytes(chain_id, proposal),
                   proposal.signature)


def decode_vote(raw: bytes) -> Vote:
    """Decode a vote from untrusted bytes; raises DecodeError only. Does not check the signature."""
    return decode(raw, Vote, max_size=MAX_VOTE_BYTES)


def decode_proposal(raw: bytes) -> Proposal:
    """Decode a proposal from untrusted bytes; raises DecodeError only."""
    return decode(raw, Proposal, max_size=MAX_PROPOSAL_BYTES)
