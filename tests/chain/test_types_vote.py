"""Votes, proposals and commits: sign docs, ed25519 signatures, domain separation, decoding."""

from __future__ import annotations

import msgspec
import pytest

from chain.types import (
    BlockIDFlag,
    Commit,
    CommitSig,
    DecodeError,
    Proposal,
    Vote,
    VoteType,
    commit_hash,
    decode_commit,
    decode_proposal,
    decode_vote,
    encode,
    proposal_sign_bytes,
    sign_proposal,
    sign_vote,
    verify_proposal,
    verify_vote,
    vote_sign_bytes,
)
from chain.types.commit import NO_COMMIT_HASH
from chain.types.vote import MAX_VOTE_BYTES, VoteSignDoc
from tests.chain.builders import (
    CHAIN_ID,
    T0,
    VALIDATORS,
    as_tree,
    block_id,
    commit_for,
    raw_msgpack,
    unsigned_vote,
)

V0, V1 = VALIDATORS[0], VALIDATORS[1]


def _proposal(round_=1, pol_round=-1) -> Proposal:
    return Proposal(height=5, round=round_, pol_round=pol_round, block_id=block_id(1),
                    time_ns=T0, proposer=V0.id, signature=bytes(64))


@pytest.mark.parametrize(
    "vote",
    [
        unsigned_vote(VoteType.PREVOTE, bid=block_id(1)),
        unsigned_vote(VoteType.PRECOMMIT, bid=block_id(2), round_=3, index=2),
        unsigned_vote(VoteType.PRECOMMIT, bid=None),  # a vote for nil
    ],
    ids=["prevote", "precommit", "nil"],
)
def test_signed_votes_round_trip_and_verify(vote):
    # Given a vote signed by its validator,
    signed = sign_vote(CHAIN_ID, vote, VALIDATORS[vote.validator_index])
    raw = encode(signed)
    # when it goes over the wire, then it comes back equal and its signature verifies.
    assert decode_vote(raw) == signed and encode(decode_vote(raw)) == raw
    assert verify_vote(CHAIN_ID, decode_vote(raw), VALIDATORS[vote.validator_index].public_key)


@pytest.mark.parametrize(
    "change",
    [{"height": 6}, {"round": 1}, {"type": VoteType.PRECOMMIT}, {"block_id": block_id(9)},
     {"block_id": None}, {"time_ns": T0}, {"validator_index": 3}],
    ids=lambda c: next(iter(c)),
)
def test_a_vote_signature_covers_every_field(change):
    signed = sign_vote(CHAIN_ID, unsigned_vote(bid=block_id(1)), V0)
    forged = msgspec.structs.replace(signed, **change)
    assert not verify_vote(CHAIN_ID, forged, V0.public_key)


def test_a_vote_does_not_verify_on_another_chain_or_under_another_key():
    signed = sign_vote(CHAIN_ID, unsigned_vote(bid=block_id(1)), V0)
    assert not verify_vote("gonka-other", signed, V0.public_key)
    # V1's key does not match the validator id named in the vote,
    assert not verify_vote(CHAIN_ID, signed, V1.public_key)
    # and a key of the wrong length is a plain False, not an exception.
    assert not verify_vote(CHAIN_ID, signed, b"\x01" * 31)


def test_a_vote_signed_by_another_validators_key_is_rejected():
    # Given V1 signing a vote that names V0, sign_vote refuses outright,
    with pytest.raises(ValueError, match="vote.validator"):
        sign_vote(CHAIN_ID, unsigned_vote(index=0), V1)
    # and a hand-made one fails verification against V0's key.
    vote = unsigned_vote(index=0)
    forged = msgspec.structs.replace(vote, signature=V1.sign(vote_sign_bytes(CHAIN_ID, vote)))
    assert not verify_vote(CHAIN_ID, forged, V0.public_key)


def test_vote_sign_bytes_are_a_tagged_doc_with_the_chain_id_and_no_signature():
    doc = msgspec.msgpack.decode(vote_sign_bytes(CHAIN_ID, unsigned_vote(bid=block_id(1))))
    assert list(doc) == ["type", *VoteSignDoc.__struct_fields__]
    assert doc["type"] == "gonka/Vote" and doc["chain_id"] == CHAIN_ID
    assert "signature" not in doc


def test_proposals_round_trip_and_verify_and_cannot_pass_as_votes():
    # Given a signed proposal,
    p = sign_proposal(CHAIN_ID, _proposal(round_=2, pol_round=1), V0)
    assert decode_proposal(encode(p)) == p
    assert verify_proposal(CHAIN_ID, p, V0.public_key)
    assert not verify_proposal("gonka-other", p, V0.public_key)
    assert not verify_proposal(CHAIN_ID, msgspec.structs.replace(p, pol_round=0), V0.public_key)
    # then its sign bytes live in their own domain, never equal to any vote's.
    assert msgspec.msgpack.decode(proposal_sign_bytes(CHAIN_ID, p))["type"] == "gonka/Proposal"


def test_a_proposal_pol_round_must_be_below_its_round():
    with pytest.raises(ValueError, match="pol_round 1 must be below round 1"):
        _proposal(round_=1, pol_round=1)
    raw = raw_msgpack(as_tree(_proposal(round_=1)) | {"pol_round": -2})
    with pytest.raises(DecodeError, match="Expected `int` >= -1 - at `\\$.pol_round`"):
        decode_proposal(raw)


VOTE_RAW = encode(sign_vote(CHAIN_ID, unsigned_vote(bid=block_id(1)), V0))


@pytest.mark.parametrize(
    "raw,expected",
    [
        (b"", "truncated"),
        (VOTE_RAW[:-1], "truncated"),
        (b"\x00" * (MAX_VOTE_BYTES + 1), "exceeds the limit"),
        (raw_msgpack(as_tree(unsigned_vote()) | {"type": 3}), "Invalid enum value 3 - at `$.type`"),
        (raw_msgpack(as_tree(unsigned_vote()) | {"validator": b"\x01" * 32}),
         "length <= 20 - at `$.validator`"),
        (raw_msgpack(as_tree(unsigned_vote()) | {"round": -1}), ">= 0 - at `$.round`"),
        (raw_msgpack(as_tree(unsigned_vote(bid=block_id(1))) | {"block_id": {"hash": b"x"}}),
         "length >= 32 - at `$.block_id.hash`"),
        (raw_msgpack(as_tree(unsigned_vote()) | {"extra": 1}), "unknown field `extra`"),
        (VOTE_RAW.replace(b"\xa6height\x05", b"\xa6height\xcc\x05"), "non-canonical encoding"),
    ],
    ids=["empty", "truncated", "oversized", "bad-type", "long-validator", "negative-round",
         "short-hash", "unknown-field", "wide-int"],
)
def test_hostile_vote_bytes_raise_decode_error(raw, expected):
    with pytest.raises(DecodeError) as e:
        decode_vote(raw)
    assert expected in str(e.value)


def test_a_commit_round_trips_and_each_precommit_in_it_verifies():
    # Given a commit with a precommit for the block, one for nil and one validator absent,
    bid = block_id(1)
    flags = (BlockIDFlag.COMMIT, BlockIDFlag.NIL, BlockIDFlag.ABSENT, BlockIDFlag.COMMIT)
    commit = commit_for(5, bid, flags)
    assert decode_commit(encode(commit)) == commit
    # then every present entry rebuilds into a precommit its validator's key verifies,
    for i, flag in enumerate(flags):
        if flag == BlockIDFlag.ABSENT:
            with pytest.raises(ValueError, match="no precommit"):
                commit.to_vote(i)
            continue
        vote = commit.to_vote(i)
        assert vote.type == VoteType.PRECOMMIT
        assert vote.block_id == (bid if flag == BlockIDFlag.COMMIT else None)
        assert verify_vote(CHAIN_ID, vote, VALIDATORS[i].public_key)
    # and the commit hash is stable and distinct from the "no commit" hash.
    assert commit_hash(commit) == commit_hash(decode_commit(encode(commit))) != NO_COMMIT_HASH


def test_a_precommit_moved_to_another_slot_or_block_does_not_verify():
    commit = commit_for(5, block_id(1))
    swapped = msgspec.structs.replace(
        commit, signatures=(commit.signatures[1], commit.signatures[0], *commit.signatures[2:]))
    assert not verify_vote(CHAIN_ID, swapped.to_vote(0), VALIDATORS[1].public_key)
    other_block = msgspec.structs.replace(commit, block_id=block_id(2))
    assert not verify_vote(CHAIN_ID, other_block.to_vote(0), VALIDATORS[0].public_key)


@pytest.mark.parametrize(
    "flag,time_ns,signature,reason",
    [
        (BlockIDFlag.COMMIT, 1, b"", "a commit signature is 64 bytes, got 0"),
        (BlockIDFlag.NIL, 1, bytes(63), "a commit signature is 64 bytes, got 63"),
        (BlockIDFlag.ABSENT, 0, bytes(64), "an absent commit signature has no signature"),
        (BlockIDFlag.ABSENT, 5, b"", "an absent commit signature has no signature and time_ns 0"),
    ],
    ids=["commit-without-signature", "nil-short-signature", "absent-with-signature",
         "absent-with-time"],
)
def test_commit_sig_shapes_are_checked_when_built_and_when_decoded(flag, time_ns, signature,
                                                                   reason):
    # Given a commit entry whose signature does not fit its flag (two spellings of one commit),
    fields = {"flag": flag, "validator": V0.id, "time_ns": time_ns, "signature": signature}
    # then it can be neither built in Python
    with pytest.raises(ValueError, match=reason):
        CommitSig(**fields)
    # nor decoded inside a commit.
    commit = as_tree(commit_for(5, block_id(1)))
    commit["signatures"][0] = fields | {"flag": int(flag)}
    with pytest.raises(DecodeError, match=reason):
        decode_commit(raw_msgpack(commit))


def test_a_commit_needs_at_least_one_signature():
    with pytest.raises(DecodeError, match="length >= 1 - at `\\$.signatures`"):
        decode_commit(encode(Commit(height=1, round=0, block_id=block_id(1), signatures=())))


def test_sign_vote_refuses_a_vote_peers_would_not_decode():
    bad = Vote(type=VoteType.PREVOTE, height=0, round=0, block_id=None, time_ns=0,
               validator=V0.id, validator_index=0, signature=bytes(64))
    with pytest.raises(DecodeError, match=">= 1 - at `\\$.height`"):
        sign_vote(CHAIN_ID, bad, V0)
