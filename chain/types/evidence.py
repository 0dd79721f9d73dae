"""Evidence of validator misbehaviour that blocks carry on chain: two conflicting votes.

`DuplicateVoteEvidence` holds two votes one validator signed for the same height, round and type
but for different blocks (or one for a block and one for nil). The pair is stored in a fixed
order (the vote whose block id encodes lower first) so that one misbehaviour has one encoding and
one hash, whoever reports it.

This module checks what a pair of votes says about itself (`validate_basic`) and its signatures
given the validator's key (`verify_duplicate_vote`); whether that validator was in the set at that
height, and whether the evidence is fresh, is `chain.consensus`'s job. No I/O, no state.
"""

from __future__ import annotations

import msgspec

import native
from chain.crypto.hashing import blake3_256
from chain.types.block_id import BlockID
from chain.types.codec import encode
from chain.types.vote import Vote, verify_vote

# A block carries at most this many pieces of evidence; the rest waits for the next block.
MAX_EVIDENCE_PER_BLOCK = 256


class InvalidEvidence(ValueError):
    """Evidence that proves nothing; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid evidence: {reason}")
        self.reason = reason


class DuplicateVoteEvidence(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                            tag_field="type", tag="gonka/DuplicateVoteEvidence"):
    """Two votes of one validator for one (height, round, type) naming different blocks."""

    vote_a: Vote
    vote_b: Vote

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def hash(self) -> bytes:
        return blake3_256(encode(self))

    def validate_basic(self) -> None:
        """Raise InvalidEvidence unless the two votes conflict, in canonical order."""
        a, b = self.vote_a, self.vote_b
        if (a.type, a.height, a.round) != (b.type, b.height, b.round):
            raise InvalidEvidence("the votes are for different heights, rounds or types")
        if a.validator != b.validator or a.validator_index != b.validator_index:
            raise InvalidEvidence("the votes are from different validators")
        ka, kb = _order_key(a.block_id), _order_key(b.block_id)
        if ka == kb:
            raise InvalidEvidence("the votes are for the same block")
        if ka > kb:
            raise InvalidEvidence("the votes are not in canonical order")


def _order_key(block_id: BlockID | None) -> bytes:
    # nil sorts first: the empty string is below any encoding.
    return b"" if block_id is None else encode(block_id)


def duplicate_vote_evidence(vote_1: Vote, vote_2: Vote) -> DuplicateVoteEvidence:
    """The evidence of two conflicting votes, in canonical order; InvalidEvidence if they do not
    conflict."""
    if _order_key(vote_1.block_id) > _order_key(vote_2.block_id):
        vote_1, vote_2 = vote_2, vote_1
    ev = DuplicateVoteEvidence(vote_a=vote_1, vote_b=vote_2)
    ev.validate_basic()
    return ev


def verify_duplicate_vote(chain_id: str, evidence: DuplicateVoteEvidence, pubkey: bytes) -> None:
    """Raise InvalidEvidence unless the pair conflicts and `pubkey` signed both votes."""
    evidence.validate_basic()
    for name, vote in (("vote_a", evidence.vote_a), ("vote_b", evidence.vote_b)):
        if not verify_vote(chain_id, vote, pubkey):
            raise InvalidEvidence(f"{name} has an invalid signature")


def evidence_hash(evidence: tuple[DuplicateVoteEvidence, ...] | list) -> bytes:
    """Merkle root over the canonical encodings, in block order (the empty root for none)."""
    return native.merkle_root([encode(e) for e in evidence])
