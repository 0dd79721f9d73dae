"""Commits: the precommits of more than 2/3 of voting power that finalised a block.

A commit lists one `CommitSig` per validator of the set, in validator-set order: the signature
of its precommit for the block, for nil, or nothing (absent). `Commit.to_vote(i)` rebuilds the
precommit validator `i` signed so its signature can be checked with `vote.verify_vote` (or in a
batch through `native`). Counting power against the validator set is `chain.consensus`'s job.
No I/O, no state.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from chain.crypto.hashing import blake3_256
from chain.types.block_id import BlockID
from chain.types.codec import decode, encode
from chain.types.common import Height, NodeId, Round, TimeNs
from chain.types.vote import Vote, VoteType

# Upper bound on the validator set a commit may list; ~150 bytes each keeps a commit under 2 MiB.
MAX_VALIDATORS = 10_000
MAX_COMMIT_BYTES = 4 << 20
# last_commit_hash of the first block, which has no previous commit.
NO_COMMIT_HASH = bytes(32)


class BlockIDFlag(enum.IntEnum):
    """What a validator's precommit was: missing, for the committed block, or for nil."""

    ABSENT = 1
    COMMIT = 2
    NIL = 3


class CommitSig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One validator's entry; an ABSENT entry has `time_ns` 0 and an empty signature."""

    flag: BlockIDFlag
    validator: NodeId
    time_ns: TimeNs
    signature: Annotated[bytes, msgspec.Meta(max_length=64)]

    def __post_init__(self) -> None:
        # Two spellings of "absent" would give one commit two hashes.
        if self.flag == BlockIDFlag.ABSENT:
            if self.signature or self.time_ns:
                raise ValueError("an absent commit signature has no signature and time_ns 0")
        elif len(self.signature) != 64:
            raise ValueError(f"a commit signature is 64 bytes, got {len(self.signature)}")


class Commit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The precommits that committed `block_id` at (`height`, `round`)."""

    height: Height
    round: Round
    block_id: BlockID
    signatures: Annotated[tuple[CommitSig, ...], msgspec.Meta(min_length=1,
                                                              max_length=MAX_VALIDATORS)]

    def to_vote(self, index: int) -> Vote:
        """The precommit validator `index` signed; ValueError if its entry is ABSENT."""
        sig = self.signatures[index]
        if sig.flag == BlockIDFlag.ABSENT:
            raise ValueError(f"validator {index} has no precommit in this commit")
        return Vote(
            type=VoteType.PRECOMMIT,
            height=self.height,
            round=self.round,
            block_id=self.block_id if sig.flag == BlockIDFlag.COMMIT else None,
            time_ns=sig.time_ns,
            validator=sig.validator,
            validator_index=index,
            signature=sig.signature,
        )


def commit_hash(commit: Commit | None) -> bytes:
    """BLAKE3-256 of the commit's canonical bytes; NO_COMMIT_HASH for None (the first block)."""
    return NO_COMMIT_HASH if commit is None else blake3_256(encode(commit))


def decode_commit(raw: bytes) -> Commit:
    """Decode a commit from untrusted bytes; raises DecodeError only. Signatures unchecked."""
    return decode(raw, Commit, max_size=MAX_COMMIT_BYTES)
