"""The evidence pool: duplicate votes seen or received, waiting to be stored in a block.

Evidence is admitted only if it proves something: the two votes conflict, the validator was in the
set at that height under the index the votes name, both signatures verify, it is not older than
`EVIDENCE_MAX_AGE` heights, and it was not committed already. The proposer puts pending evidence
in its block; every validator checks the block's evidence with the same rules (`check_block`).
The pool keeps the validator sets of the heights it may be asked about.

Pure state, no I/O: on restart the driver rebuilds it from the block store.
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.consensus.validators import ValidatorSet
from chain.types.evidence import (
    MAX_EVIDENCE_PER_BLOCK,
    DuplicateVoteEvidence,
    InvalidEvidence,
    verify_duplicate_vote,
)

# Evidence older than this many heights is no longer accepted (nor its validator set kept).
EVIDENCE_MAX_AGE = 100


class EvidencePool:
    __slots__ = ("chain_id", "max_age", "_sets", "_pending", "_committed")

    def __init__(self, chain_id: str, max_age: int = EVIDENCE_MAX_AGE) -> None:
        self.chain_id = chain_id
        self.max_age = max_age
        self._sets: dict[int, ValidatorSet] = {}
        self._pending: dict[bytes, DuplicateVoteEvidence] = {}
        self._committed: dict[bytes, int] = {}

    def set_validators(self, height: int, validators: ValidatorSet) -> None:
        """Remember who voted at `height` (called for each height as the chain moves on)."""
        self._sets[height] = validators

    def verify(self, evidence: DuplicateVoteEvidence, height: int) -> None:
        """Raise InvalidEvidence unless `evidence` may go into a block at `height`."""
        evidence.validate_basic()
        if evidence.height > height:
            raise InvalidEvidence(f"evidence from height {evidence.height}, after {height}")
        if evidence.height < height - self.max_age:
            raise InvalidEvidence(f"evidence from height {evidence.height} is too old")
        validators = self._sets.get(evidence.height)
        if validators is None:
            raise InvalidEvidence(f"no validator set known for height {evidence.height}")
        index = evidence.vote_a.validator_index
        if index >= len(validators) or validators[index].id != evidence.validator:
            raise InvalidEvidence(f"{evidence.validator.hex()} was not validator #{index} at "
                                  f"height {evidence.height}")
        verify_duplicate_vote(self.chain_id, evidence, validators[index].pubkey)
        if evidence.hash in self._committed:
            raise InvalidEvidence("already committed")

    def add(self, evidence: DuplicateVoteEvidence, height: int) -> bool:
        """Verify and keep `evidence` for a proposal; False if it is pending already."""
        if evidence.hash in self._pending:
            return False
        self.verify(evidence, height)
        self._pending[evidence.hash] = evidence
        return True

    def pending(self, height: int, limit: int = MAX_EVIDENCE_PER_BLOCK
                ) -> tuple[DuplicateVoteEvidence, ...]:
        """What a proposer at `height` includes: fresh pending evidence, oldest first."""
        fresh = [e for e in self._pending.values() if e.height >= height - self.max_age]
        fresh.sort(key=lambda e: (e.height, e.hash))
        return tuple(fresh[:limit])

    def check_block(self, evidence: Sequence[DuplicateVoteEvidence], height: int) -> None:
        """Raise InvalidEvidence unless every item of a block at `height` is admissible."""
        for e in evidence:
            self.verify(e, height)

    def mark_committed(self, evidence: Sequence[DuplicateVoteEvidence], height: int) -> None:
        """`evidence` is on chain at `height`; forget what has aged out."""
        for e in evidence:
            self._committed[e.hash] = height
            self._pending.pop(e.hash, None)
        horizon = height - self.max_age
        for h in [h for h in self._sets if h < horizon]:
            del self._sets[h]
        for key in [k for k, h in self._committed.items() if h < horizon]:
            del self._committed[key]
        for key in [k for k, e in self._pending.items() if e.height < horizon]:
            del self._pending[key]
