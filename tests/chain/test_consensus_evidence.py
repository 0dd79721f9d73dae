"""Duplicate-vote evidence: the wire type, blocks that carry it, and the pool's admission rules."""

from __future__ import annotations

import msgspec
import pytest

from chain.consensus.blocks import make_block
from chain.consensus.evidence import EvidencePool
from chain.crypto import ed25519
from chain.types.block import InvalidBlock, decode_block
from chain.types.codec import encode
from chain.types.evidence import (
    DuplicateVoteEvidence,
    InvalidEvidence,
    duplicate_vote_evidence,
    evidence_hash,
    verify_duplicate_vote,
)
from chain.types.vote import Vote, VoteType, sign_vote
from tests.chain.sim.fixtures import CHAIN_ID, KEYS, T0, first_state, key_at, other_block_id, vote

STATE = first_state()
VSET = STATE.validators
TRAITOR = key_at(VSET, 1)


def double_vote(height=1, round_=0, key=TRAITOR, a=1, b=None):
    va = vote(VSET, key, VoteType.PREVOTE, height, round_, other_block_id(a))
    vb = vote(VSET, key, VoteType.PREVOTE, height, round_, None if b is None else other_block_id(b))
    return duplicate_vote_evidence(va, vb)


def test_evidence_has_one_canonical_order_whoever_reports_it():
    va = vote(VSET, TRAITOR, VoteType.PREVOTE, 1, 0, other_block_id(1))
    vb = vote(VSET, TRAITOR, VoteType.PREVOTE, 1, 0, None)
    assert duplicate_vote_evidence(va, vb) == duplicate_vote_evidence(vb, va)
    ev = duplicate_vote_evidence(va, vb)
    assert ev.vote_a == vb  # nil sorts first
    with pytest.raises(InvalidEvidence, match="canonical order"):
        DuplicateVoteEvidence(vote_a=va, vote_b=vb).validate_basic()


@pytest.mark.parametrize("change,reason", [
    ({"round": 1}, "different heights, rounds or types"),
    ({"type": VoteType.PRECOMMIT}, "different heights, rounds or types"),
    ({"validator": KEYS[0].id}, "different validators"),
    ({"block_id": other_block_id(1)}, "same block"),
], ids=["round", "type", "validator", "same-block"])
def test_votes_that_do_not_conflict_are_not_evidence(change, reason):
    va = vote(VSET, TRAITOR, VoteType.PREVOTE, 1, 0, other_block_id(1))
    vb = msgspec.structs.replace(vote(VSET, TRAITOR, VoteType.PREVOTE, 1, 0, None), **change)
    with pytest.raises(InvalidEvidence, match=reason):
        duplicate_vote_evidence(va, vb)


def test_evidence_with_a_forged_vote_does_not_verify():
    ev = double_vote()
    forged = msgspec.structs.replace(ev, vote_b=msgspec.structs.replace(
        ev.vote_b, signature=bytes(64)))
    verify_duplicate_vote(CHAIN_ID, ev, TRAITOR.public_key)
    with pytest.raises(InvalidEvidence, match="vote_b has an invalid signature"):
        verify_duplicate_vote(CHAIN_ID, forged, TRAITOR.public_key)


def _block_with(evidence):
    return make_block(STATE, time_ns=T0, txs=(), evidence=evidence, proposer=KEYS[0].id)


def test_a_block_stores_evidence_and_commits_to_it_in_its_header():
    ev = double_vote()
    block = _block_with([ev])
    assert block.header.evidence_hash == evidence_hash([ev])
    again = decode_block(encode(block))
    assert again.evidence == (ev,)
    again.validate_basic()


@pytest.mark.parametrize("tamper,reason", [
    (lambda b, ev: msgspec.structs.replace(b, evidence=()), "evidence_hash"),
    (lambda b, ev: _block_with([ev, ev]), "listed twice"),
    (lambda b, ev: _block_with([DuplicateVoteEvidence(vote_a=ev.vote_b, vote_b=ev.vote_a)]),
     "canonical order"),
], ids=["evidence-dropped", "evidence-twice", "evidence-unordered"])
def test_a_block_whose_evidence_disagrees_with_itself_is_invalid(tamper, reason):
    ev = double_vote()
    with pytest.raises(InvalidBlock, match=reason):
        tamper(_block_with([ev]), ev).validate_basic()


def pool_at(height=1) -> EvidencePool:
    pool = EvidencePool(CHAIN_ID, max_age=10)
    pool.set_validators(height, VSET)
    return pool


def test_the_pool_keeps_verified_evidence_once_for_the_next_proposal():
    pool = pool_at()
    ev = double_vote()
    assert pool.add(ev, 1) is True
    assert pool.add(ev, 1) is False
    assert pool.pending(1) == (ev,)
    # Once on chain it is no longer pending, and offered again it is refused.
    pool.mark_committed([ev], 1)
    assert pool.pending(2) == ()
    with pytest.raises(InvalidEvidence, match="already committed"):
        pool.add(ev, 2)


def test_the_pool_refuses_evidence_it_cannot_or_must_not_use():
    pool = pool_at()
    with pytest.raises(InvalidEvidence, match="after"):
        pool.verify(double_vote(height=2), 1)
    with pytest.raises(InvalidEvidence, match="too old"):
        pool.verify(double_vote(height=1), 12)
    with pytest.raises(InvalidEvidence, match="no validator set"):
        pool.verify(double_vote(height=3), 5)
    # A key outside the set double-signing proves nothing about the set.
    stranger = ed25519.PrivateKey(bytes([9]) * 32)
    votes = [sign_vote(CHAIN_ID, Vote(type=VoteType.PREVOTE, height=1, round=0, block_id=b,
                                      time_ns=T0, validator=stranger.id, validator_index=0,
                                      signature=bytes(64)), stranger)
             for b in (None, other_block_id(1))]
    with pytest.raises(InvalidEvidence, match="was not validator #0"):
        pool.verify(duplicate_vote_evidence(*votes), 1)


def test_a_block_with_admissible_evidence_passes_the_pool_and_a_forged_one_does_not():
    pool = pool_at()
    ev = double_vote()
    pool.check_block([ev], 1)
    forged = msgspec.structs.replace(ev, vote_a=msgspec.structs.replace(
        ev.vote_a, signature=bytes(64)))
    with pytest.raises(InvalidEvidence):
        pool.check_block([ev, forged], 1)
