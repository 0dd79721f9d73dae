"""Votes of one height, round and type, counted by voting power; commits and their verification.

A `VoteSet` admits a vote only if it is for its (height, round, type), comes from a member of the
validator set under the right index, and carries that validator's signature. A second, different
vote of a validator for another block is misbehaviour: the set raises `ConflictingVote` carrying
the `DuplicateVoteEvidence` (and counts the vote for its block, see `VoteSet`).
Signatures can be checked one at a time or many at once through `native.verify_batch_ed25519`
(`add_votes`, `check_vote_signatures`).

`verify_commit` is what block sync and a block's `last_commit` check rely on: more than 2/3 of a
set's power signed precommits for the block, every listed signature valid (one batch call).

Pure: no I/O, no clock. Errors are types, each saying what was wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import native
from chain.consensus.validators import ValidatorSet
from chain.types.block_id import BlockID
from chain.types.commit import BlockIDFlag, Commit, CommitSig
from chain.types.evidence import DuplicateVoteEvidence, duplicate_vote_evidence
from chain.types.vote import Vote, VoteType, vote_sign_bytes


class VoteError(ValueError):
    """A vote the set refused; nothing was counted."""


class WrongVoteStep(VoteError):
    """The vote is for another height, round or type than the set's."""


class UnknownValidator(VoteError):
    """The signer is not in the validator set, or not at the index the vote names."""


class InvalidVoteSignature(VoteError):
    """The signature does not verify under the validator's key."""


class NonDeterministicVote(VoteError):
    """A second, differently signed vote of one validator for the same block: not evidence of
    equivocation (both name the same block), but not counted either."""


class ConflictingVote(VoteError):
    """A validator voted for two different blocks; `evidence` proves it. `counted` says whether
    the later vote was counted for its block anyway (see VoteSet)."""

    def __init__(self, evidence: DuplicateVoteEvidence) -> None:
        super().__init__(f"validator {evidence.validator.hex()} voted twice at height "
                         f"{evidence.height} round {evidence.vote_a.round}")
        self.evidence = evidence
        self.counted = False


class NoMajority(enum.Enum):
    """`two_thirds_majority` before any block (or nil) has more than 2/3 of the power."""

    NOT_YET = "not yet"


NOT_YET = NoMajority.NOT_YET


def check_vote_signatures(chain_id: str, validators: ValidatorSet,
                          votes: Sequence[Vote]) -> list[bool]:
    """One batch check: True where the vote's named validator is in the set at its index and
    signed it. Votes from outside the set are False without a signature check."""
    keys, msgs, sigs, where = [], [], [], []
    ok = [False] * len(votes)
    for i, vote in enumerate(votes):
        if not _is_member(validators, vote):
            continue
        keys.append(validators[vote.validator_index].pubkey)
        msgs.append(vote_sign_bytes(chain_id, vote))
        sigs.append(vote.signature)
        where.append(i)
    if where:
        for i, good in zip(where, native.verify_batch_ed25519(keys, msgs, sigs), strict=True):
            ok[i] = bool(good)
    return ok


def _is_member(validators: ValidatorSet, vote: Vote) -> bool:
    return (vote.validator_index < len(validators)
            and validators[vote.validator_index].id == vote.validator)


class VoteSet:
    """The prevotes or precommits of one (height, round), tallied by block id.

    A validator's first vote is its vote (`get`, `has_two_thirds_any`). A later vote of the same
    validator for another block is evidence (ConflictingVote) and is also counted for that block,
    as the paper counts every message: otherwise an equivocator could show one half of the
    network a proof of lock the other half can never complete, and stall it forever. With less
    than 1/3 of the power Byzantine, two blocks still cannot both pass 2/3. At most
    MAX_EXTRA_VOTES such votes are kept per validator; when full, one for a block nobody else
    voted for makes room.
    """

    MAX_EXTRA_VOTES = 4

    __slots__ = ("chain_id", "height", "round", "type", "validators", "_votes", "_extra",
                 "_power_by_block", "_voted_power", "_majority")

    def __init__(self, chain_id: str, height: int, round_: int, vote_type: VoteType,
                 validators: ValidatorSet) -> None:
        self.chain_id = chain_id
        self.height = height
        self.round = round_
        self.type = VoteType(vote_type)
        self.validators = validators
        self._votes: list[Vote | None] = [None] * len(validators)
        # Conflicting votes counted for their blocks: index -> block id -> vote.
        self._extra: dict[int, dict[BlockID | None, Vote]] = {}
        self._power_by_block: dict[BlockID | None, int] = {}
        self._voted_power = 0
        self._majority: BlockID | None | NoMajority = NOT_YET

    def add_vote(self, vote: Vote, *, signature_checked: bool = False) -> bool:
        """Count `vote`; False if this exact vote was already counted.

        Raises WrongVoteStep, UnknownValidator, InvalidVoteSignature or NonDeterministicVote
        (nothing counted), or ConflictingVote (with the evidence; `counted` says whether the
        vote now also counts for its block). `signature_checked` skips the signature check for
        a vote the caller verified already (`check_vote_signatures`).
        """
        if (vote.height, vote.round, vote.type) != (self.height, self.round, self.type):
            raise WrongVoteStep(
                f"vote for {vote.height}/{vote.round}/{vote.type.name} in a set for "
                f"{self.height}/{self.round}/{self.type.name}")
        if not _is_member(self.validators, vote):
            raise UnknownValidator(
                f"{vote.validator.hex()} is not validator #{vote.validator_index} of the set")
        if self.holds(vote):
            return False
        if not signature_checked and not check_vote_signatures(
                self.chain_id, self.validators, [vote])[0]:
            raise InvalidVoteSignature(
                f"bad signature on the vote of {vote.validator.hex()} at {vote.height}/"
                f"{vote.round}/{vote.type.name}")
        index = vote.validator_index
        first = self._votes[index]
        if first is None:
            self._votes[index] = vote
            self._voted_power += self.validators[index].power
            self._count(vote.block_id, index)
            return True
        extra = self._extra.setdefault(index, {})
        if first.block_id == vote.block_id or vote.block_id in extra:
            raise NonDeterministicVote(
                f"{vote.validator.hex()} signed its vote for the same block twice")
        conflict = ConflictingVote(duplicate_vote_evidence(first, vote))
        if len(extra) >= self.MAX_EXTRA_VOTES and not self._make_room(index, extra):
            raise conflict
        extra[vote.block_id] = vote
        self._count(vote.block_id, index)
        conflict.counted = True
        raise conflict

    def _count(self, block_id: BlockID | None, index: int) -> None:
        tally = self._power_by_block.get(block_id, 0) + self.validators[index].power
        self._power_by_block[block_id] = tally
        if self._majority is NOT_YET and tally >= self.validators.quorum:
            self._majority = block_id

    def _make_room(self, index: int, extra: dict[BlockID | None, Vote]) -> bool:
        """Drop one of `index`'s extra votes that only `index` supports; False if none."""
        power = self.validators[index].power
        for block_id in extra:
            if block_id != self._majority and self._power_by_block[block_id] == power:
                del extra[block_id]
                del self._power_by_block[block_id]
                return True
        return False

    def add_votes(self, votes: Sequence[Vote]) -> list[bool | VoteError]:
        """Add many votes with one batch signature check; per vote, what `add_vote` returned or
        the error it raised."""
        fresh = [i for i, v in enumerate(votes) if not self.holds(v)]
        good = [False] * len(votes)
        checked = check_vote_signatures(self.chain_id, self.validators, [votes[i] for i in fresh])
        for i, ok in zip(fresh, checked, strict=True):
            good[i] = ok
        out: list[bool | VoteError] = []
        for vote, ok in zip(votes, good, strict=True):
            try:
                # A vote that failed the batch is checked again alone, to raise the right error.
                out.append(self.add_vote(vote, signature_checked=ok))
            except VoteError as e:
                out.append(e)
        return out

    def holds(self, vote: Vote) -> bool:
        """This exact vote is already counted (a cheap test before any signature check)."""
        if not _is_member(self.validators, vote):
            return False
        index = vote.validator_index
        return (self._votes[index] == vote
                or self._extra.get(index, {}).get(vote.block_id) == vote)

    # -- tallies ------------------------------------------------------------------------------

    def two_thirds_majority(self) -> BlockID | None | NoMajority:
        """The block id (None: nil) with more than 2/3 of the power, or NOT_YET."""
        return self._majority

    def has_two_thirds_any(self) -> bool:
        """More than 2/3 of the power voted, for anything."""
        return self._voted_power >= self.validators.quorum

    def power_for(self, block_id: BlockID | None) -> int:
        return self._power_by_block.get(block_id, 0)

    @property
    def voted_power(self) -> int:
        return self._voted_power

    def get(self, index: int) -> Vote | None:
        """Validator `index`'s (first) vote."""
        return self._votes[index]

    def votes(self) -> tuple[Vote, ...]:
        """The first votes, in validator order."""
        return tuple(v for v in self._votes if v is not None)

    def all_votes(self) -> tuple[Vote, ...]:
        """Every vote counted, conflicting ones included (what a node relays to its peers)."""
        extra = [v for i in sorted(self._extra) for v in self._extra[i].values()]
        return self.votes() + tuple(extra)

    def make_commit(self) -> Commit:
        """The commit of the block that has more than 2/3 of these precommits.

        Each validator is listed with its precommit for that block if it signed one (even as a
        conflicting vote), else its nil precommit, else as absent; ValueError without a block
        majority or for prevotes.
        """
        if self.type != VoteType.PRECOMMIT:
            raise ValueError("only precommits make a commit")
        block_id = self._majority
        if block_id is None or block_id is NOT_YET:
            raise ValueError("no block has more than 2/3 of the precommits")
        sigs = []
        for i, first in enumerate(self._votes):
            validator = self.validators[i].id
            vote = self._extra.get(i, {}).get(block_id, first)
            if vote is None or (vote.block_id is not None and vote.block_id != block_id):
                sigs.append(CommitSig(flag=BlockIDFlag.ABSENT, validator=validator, time_ns=0,
                                      signature=b""))
            else:
                flag = BlockIDFlag.NIL if vote.block_id is None else BlockIDFlag.COMMIT
                sigs.append(CommitSig(flag=flag, validator=validator, time_ns=vote.time_ns,
                                      signature=vote.signature))
        return Commit(height=self.height, round=self.round, block_id=block_id,
                      signatures=tuple(sigs))


class InvalidCommit(ValueError):
    """A commit that does not prove its block; `reason` says why."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"invalid commit for height {height}: {reason}")
        self.height = height
        self.reason = reason


class InsufficientVotingPower(InvalidCommit):
    """The commit is well formed but its signers hold 2/3 of the power or less."""

    def __init__(self, height: int, got: int, needed: int) -> None:
        super().__init__(height, f"signed by power {got}, more than 2/3 needs {needed}")
        self.got = got
        self.needed = needed


def verify_commit(chain_id: str, validators: ValidatorSet, height: int, block_id: BlockID,
                  commit: Commit) -> None:
    """Raise InvalidCommit unless more than 2/3 of `validators`' power signed `block_id` at
    `height` and every signature the commit lists is valid (one batch check)."""
    if commit.height != height:
        raise InvalidCommit(height, f"the commit is for height {commit.height}")
    if commit.block_id != block_id:
        raise InvalidCommit(height, "the commit is for another block")
    if len(commit.signatures) != len(validators):
        raise InvalidCommit(height, f"{len(commit.signatures)} signatures for a set of "
                                    f"{len(validators)} validators")
    tallied = 0
    keys, msgs, sigs, where = [], [], [], []
    for i, sig in enumerate(commit.signatures):
        if sig.flag == BlockIDFlag.ABSENT:
            continue
        validator = validators[i]
        if sig.validator != validator.id:
            raise InvalidCommit(height, f"signature #{i} names {sig.validator.hex()}, "
                                        f"not validator {validator.id.hex()}")
        if sig.flag == BlockIDFlag.COMMIT:
            tallied += validator.power
        keys.append(validator.pubkey)
        msgs.append(vote_sign_bytes(chain_id, commit.to_vote(i)))
        sigs.append(sig.signature)
        where.append(i)
    # Count before verifying: a commit that cannot be enough costs no signature checks.
    if tallied < validators.quorum:
        raise InsufficientVotingPower(height, tallied, validators.quorum)
    for i, good in zip(where, native.verify_batch_ed25519(keys, msgs, sigs), strict=True):
        if not good:
            raise InvalidCommit(height, f"signature #{i} ({validators[i].id.hex()}) is invalid")
