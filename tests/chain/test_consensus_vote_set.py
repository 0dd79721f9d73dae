"""Vote sets (majorities, nil versus not yet, conflicts as evidence, refused votes) and commits
(making them, and verify_commit refusing forged or insufficient ones)."""

from __future__ import annotations

import msgspec
import pytest

from chain.consensus.vote_set import (
    NOT_YET,
    ConflictingVote,
    InsufficientVotingPower,
    InvalidCommit,
    InvalidVoteSignature,
    UnknownValidator,
    VoteSet,
    WrongVoteStep,
    check_vote_signatures,
    verify_commit,
)
from chain.crypto import ed25519
from chain.types.commit import BlockIDFlag, CommitSig
from chain.types.evidence import verify_duplicate_vote
from chain.types.vote import VoteType
from tests.chain.sim.fixtures import CHAIN_ID, first_state, key_at, other_block_id, vote

VSET = first_state().validators  # four validators of power 10: quorum 27
B, C = other_block_id(1), other_block_id(2)
K = [key_at(VSET, i) for i in range(4)]


def prevotes(*targets, round_=0):
    return [vote(VSET, K[i], VoteType.PREVOTE, 1, round_, t) for i, t in enumerate(targets)]


def new_set(type_=VoteType.PREVOTE) -> VoteSet:
    return VoteSet(CHAIN_ID, 1, 0, type_, VSET)


def test_a_block_needs_more_than_two_thirds_of_the_power():
    votes = new_set()
    for v in prevotes(B, B):
        assert votes.add_vote(v) is True
    # Given 20 of 40 for B: no majority, and not 2/3 of anything either.
    assert votes.two_thirds_majority() is NOT_YET and not votes.has_two_thirds_any()
    # When a third validator votes B, then B has 30 > 26.67.
    votes.add_vote(prevotes(B, B, B)[2])
    assert votes.two_thirds_majority() == B
    assert votes.power_for(B) == 30 and votes.has_two_thirds_any()


def test_two_thirds_for_nil_is_not_the_same_as_no_majority():
    nil = new_set()
    for v in prevotes(None, None, None):
        nil.add_vote(v)
    split = new_set()
    for v in prevotes(B, None, C):
        split.add_vote(v)
    assert nil.two_thirds_majority() is None
    assert split.two_thirds_majority() is NOT_YET and split.has_two_thirds_any()


def test_a_vote_from_outside_the_validator_set_is_refused():
    stranger = ed25519.PrivateKey(bytes([7]) * 32)
    honest = prevotes(B)[0]
    forged = msgspec.structs.replace(honest, validator=stranger.id)
    votes = new_set()
    with pytest.raises(UnknownValidator):
        votes.add_vote(forged)
    # A member's vote claiming another member's index is refused too.
    with pytest.raises(UnknownValidator):
        votes.add_vote(msgspec.structs.replace(honest, validator_index=1))
    assert votes.voted_power == 0


@pytest.mark.parametrize("change", [{"height": 2}, {"round": 1}, {"type": VoteType.PRECOMMIT}])
def test_a_vote_for_another_step_is_refused(change):
    with pytest.raises(WrongVoteStep):
        new_set().add_vote(msgspec.structs.replace(prevotes(B)[0], **change))


def test_a_bad_signature_is_refused_and_counts_nothing():
    votes = new_set()
    forged = msgspec.structs.replace(prevotes(B)[0], block_id=C)  # signed for B, claims C
    with pytest.raises(InvalidVoteSignature):
        votes.add_vote(forged)
    assert votes.voted_power == 0 and votes.get(0) is None


def test_the_same_vote_twice_counts_once():
    votes = new_set()
    v = prevotes(B)[0]
    assert votes.add_vote(v) is True
    assert votes.add_vote(v) is False
    assert votes.power_for(B) == 10


def test_conflicting_votes_raise_evidence_that_verifies():
    # Given validator 0 voted for B,
    votes = new_set()
    first = prevotes(B)[0]
    votes.add_vote(first)
    # when it also votes for C,
    second = prevotes(C)[0]
    with pytest.raises(ConflictingVote) as e:
        votes.add_vote(second)
    # then the evidence holds both votes in canonical order and proves the double vote,
    ev = e.value.evidence
    assert {ev.vote_a, ev.vote_b} == {first, second}
    verify_duplicate_vote(CHAIN_ID, ev, VSET[0].pubkey)
    # and its first vote stays its vote, while the second one also backs C.
    assert votes.get(0) == first and votes.voted_power == 10
    assert e.value.counted and votes.power_for(C) == 10


def test_an_equivocator_cannot_make_two_majorities_but_its_vote_completes_one():
    # Validator 0 (Byzantine) tells some peers "nil" and others "B": a node that heard "nil"
    # first must still see the 2/3 for B once the other vote reaches it, or it could never
    # accept a proof of lock the rest of the network holds.
    votes = new_set()
    votes.add_vote(prevotes(None)[0])
    for v in prevotes(B, B, B)[1:]:
        votes.add_vote(v)
    assert votes.two_thirds_majority() is NOT_YET  # 20 for B, 10 for nil
    with pytest.raises(ConflictingVote):
        votes.add_vote(prevotes(B)[0])
    assert votes.two_thirds_majority() == B  # 30 for B
    assert votes.power_for(None) == 10 and votes.voted_power == 30


def test_add_votes_checks_a_batch_and_reports_each_outcome():
    votes = new_set()
    good = prevotes(B, B, None)
    bad = msgspec.structs.replace(prevotes(None, None, None, C)[3], block_id=B)
    outcomes = votes.add_votes([good[0], good[1], good[0], bad, good[2]])
    assert outcomes[:3] == [True, True, False]
    assert isinstance(outcomes[3], InvalidVoteSignature)
    assert outcomes[4] is True
    assert check_vote_signatures(CHAIN_ID, VSET, [good[0], bad]) == [True, False]


def precommit_set(*targets):
    votes = new_set(VoteType.PRECOMMIT)
    for i, t in enumerate(targets):
        if t != "absent":
            votes.add_vote(vote(VSET, K[i], VoteType.PRECOMMIT, 1, 0, t))
    return votes


def test_a_commit_lists_every_validator_and_verifies():
    commit = precommit_set(B, None, B, B).make_commit()
    assert [s.flag for s in commit.signatures] == [BlockIDFlag.COMMIT, BlockIDFlag.NIL,
                                                   BlockIDFlag.COMMIT, BlockIDFlag.COMMIT]
    verify_commit(CHAIN_ID, VSET, 1, B, commit)


def test_a_precommit_for_another_block_is_absent_from_the_commit():
    commit = precommit_set(B, C, B, B).make_commit()
    assert commit.signatures[1].flag == BlockIDFlag.ABSENT
    verify_commit(CHAIN_ID, VSET, 1, B, commit)


def test_no_commit_without_a_block_majority():
    with pytest.raises(ValueError):
        precommit_set(None, None, None, B).make_commit()
    with pytest.raises(ValueError):
        new_set().make_commit()


def _with_sig(commit, index, **changes):
    sigs = list(commit.signatures)
    sigs[index] = msgspec.structs.replace(sigs[index], **changes)
    return msgspec.structs.replace(commit, signatures=tuple(sigs))


def _good_commit():
    return precommit_set(B, B, B, "absent").make_commit()


@pytest.mark.parametrize("make,height,block,error,reason", [
    (lambda: _with_sig(_good_commit(), 1, signature=bytes(64)), 1, B, InvalidCommit,
     "signature #1"),
    (lambda: _with_sig(_good_commit(), 0, time_ns=5), 1, B, InvalidCommit, "signature #0"),
    (lambda: _with_sig(_good_commit(), 2, flag=BlockIDFlag.ABSENT, time_ns=0, signature=b""),
     1, B, InsufficientVotingPower, "signed by power 20"),
    (_good_commit, 2, B, InvalidCommit, "for height 1"),
    (_good_commit, 1, C, InvalidCommit, "another block"),
    (lambda: msgspec.structs.replace(_good_commit(),
                                     signatures=_good_commit().signatures[:3]),
     1, B, InvalidCommit, "3 signatures for a set of 4"),
    (lambda: _with_sig(_good_commit(), 0, validator=VSET[1].id), 1, B, InvalidCommit,
     "names"),
], ids=["forged-signature", "altered-time", "not-enough-power", "wrong-height", "wrong-block",
        "wrong-size", "wrong-validator"])
def test_verify_commit_refuses_forged_or_insufficient_commits(make, height, block, error, reason):
    with pytest.raises(error, match=reason):
        verify_commit(CHAIN_ID, VSET, height, block, make())


def test_a_commit_signed_by_nil_votes_does_not_count_them_as_power():
    # Two COMMIT and two NIL precommits: every signature is valid, but only 20 of 40 is for B.
    votes = precommit_set(B, B, None, None)
    assert votes.two_thirds_majority() is NOT_YET
    sigs = [CommitSig(flag=BlockIDFlag.COMMIT if i < 2 else BlockIDFlag.NIL,
                      validator=v.validator, time_ns=v.time_ns, signature=v.signature)
            for i, v in enumerate(votes.votes())]
    forged = msgspec.structs.replace(_good_commit(), signatures=tuple(sigs))
    with pytest.raises(InsufficientVotingPower) as e:
        verify_commit(CHAIN_ID, VSET, 1, B, forged)
    assert (e.value.got, e.value.needed) == (20, 27)
