"""Validator sets and CometBFT's weighted round-robin choice of proposer (DESIGN.md section 4).

A `ValidatorSet` is the list of validators that votes at one height, in CometBFT's order (voting
power descending, then id ascending: the index of a validator in votes and commits), each with a
proposer priority. Choosing a proposer adds every validator's power to its priority, picks the
highest (ties to the lower id) and subtracts the total power from the winner, so over time each
validator proposes in proportion to its power. Before that, priorities are rescaled so that their
spread stays within twice the total power, and centred on zero; a validator that joins starts at
-1.125 x total power, so that leaving and re-joining cannot jump the queue. The arithmetic follows
CometBFT's `types/validator_set.go` exactly, int64 clipping and Go's truncating division included,
so that every node picks the same proposer.

Sets are immutable: every operation returns a new set. No I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import native
from chain.app.abci import ValidatorUpdate
from chain.crypto.ed25519 import node_id
from chain.types.codec import encode

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
# CometBFT's bound: small enough that no priority arithmetic below can leave int64.
MAX_TOTAL_VOTING_POWER = MAX_INT64 // 8
# Priorities may spread over at most this many times the total power.
PRIORITY_WINDOW_SIZE_FACTOR = 2


class ValidatorSetError(ValueError):
    """An impossible set or update (empty set, unknown removal, duplicate, power overflow)."""


@dataclass(frozen=True, slots=True)
class Validator:
    """A validator's ed25519 consensus key, its voting power and its proposer priority."""

    pubkey: bytes
    power: int
    proposer_priority: int = 0
    # The 20-byte id votes and headers name it by (`chain.crypto.ed25519.node_id`).
    id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", node_id(self.pubkey))

    def with_priority(self, priority: int) -> Validator:
        return Validator(self.pubkey, self.power, priority)


def _clip(x: int) -> int:
    return MAX_INT64 if x > MAX_INT64 else MIN_INT64 if x < MIN_INT64 else x


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class ValidatorSet:
    """The validators of one height, in index order, with their priorities and the proposer."""

    __slots__ = ("validators", "total_power", "_by_id", "_proposer", "_hash")

    def __init__(self, validators: Iterable[Validator], proposer: Validator | None = None) -> None:
        """A set exactly as given (order and priorities kept); `new` builds one from scratch."""
        self.validators: tuple[Validator, ...] = tuple(validators)
        if not self.validators:
            raise ValidatorSetError("a validator set cannot be empty")
        self._by_id = {v.id: (i, v) for i, v in enumerate(self.validators)}
        if len(self._by_id) != len(self.validators):
            raise ValidatorSetError("a validator is listed twice")
        if any(v.power <= 0 for v in self.validators):
            raise ValidatorSetError("every validator of a set has positive power")
        self.total_power = sum(v.power for v in self.validators)
        if self.total_power > MAX_TOTAL_VOTING_POWER:
            raise ValidatorSetError(
                f"total voting power {self.total_power} exceeds {MAX_TOTAL_VOTING_POWER}")
        self._proposer = proposer
        self._hash: bytes | None = None

    @classmethod
    def new(cls, validators: Sequence[ValidatorUpdate] | Sequence[Validator]) -> ValidatorSet:
        """CometBFT's NewValidatorSet: the validators sorted, priorities centred, incremented once.

        Accepts `ValidatorUpdate`s (as `init_chain` returns) or `Validator`s; power 0 is an error.
        """
        changes = [(v.pubkey, v.power) for v in validators]
        if any(power == 0 for _, power in changes):
            raise ValidatorSetError("a new validator set cannot contain power 0")
        priorities = _apply_changes({}, changes)
        return _from_priorities(priorities, None).copy_increment_proposer_priority(1)

    # -- lookups ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.validators)

    def __iter__(self):
        return iter(self.validators)

    def __getitem__(self, index: int) -> Validator:
        return self.validators[index]

    def __eq__(self, other: object) -> bool:
        # Validators compare with their priorities, so equal sets choose the same proposers.
        return (isinstance(other, ValidatorSet) and self.validators == other.validators
                and self.proposer == other.proposer)

    def __hash__(self) -> int:
        return hash(self.hash())

    def __repr__(self) -> str:
        items = ", ".join(f"{v.id.hex()[:8]}:{v.power}@{v.proposer_priority}"
                          for v in self.validators)
        return f"<ValidatorSet {items}>"

    def by_id(self, validator_id: bytes) -> tuple[int, Validator] | None:
        """(index, validator) of the validator with this id, or None."""
        return self._by_id.get(validator_id)

    def has(self, validator_id: bytes) -> bool:
        return validator_id in self._by_id

    @property
    def quorum(self) -> int:
        """The least power that is more than 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    @property
    def one_third_plus(self) -> int:
        """The least power that is more than 1/3 of the total (at least one honest validator)."""
        return self.total_power // 3 + 1

    @property
    def proposer(self) -> Validator:
        """The proposer chosen by the last increment (or the highest priority if never chosen)."""
        if self._proposer is None:
            self._proposer = _most_priority(self.validators)
        return self._proposer

    def hash(self) -> bytes:
        """Merkle root over the canonical encoding of (pubkey, power), in set order."""
        if self._hash is None:
            self._hash = native.merkle_root([encode((v.pubkey, v.power)) for v in self.validators])
        return self._hash

    # -- proposer rotation --------------------------------------------------------------------

    def copy_increment_proposer_priority(self, times: int) -> ValidatorSet:
        """The set after `times` proposer choices; its `proposer` is the last one chosen."""
        if times <= 0:
            raise ValidatorSetError("times must be positive")
        total = self.total_power
        prios = _rescale([v.proposer_priority for v in self.validators],
                         PRIORITY_WINDOW_SIZE_FACTOR * total)
        avg = sum(prios) // len(prios)  # big.Int Div: floors, as // does for a positive divisor
        prios = [_clip(p - avg) for p in prios]
        powers = [v.power for v in self.validators]
        tie_breaks = [_neg(v.id) for v in self.validators]
        chosen = 0
        for _ in range(times):
            prios = [_clip(p + w) for p, w in zip(prios, powers, strict=True)]
            chosen = max(range(len(prios)), key=lambda i: (prios[i], tie_breaks[i]))
            prios[chosen] = _clip(prios[chosen] - total)
        vals = [v.with_priority(p) for v, p in zip(self.validators, prios, strict=True)]
        return ValidatorSet(vals, vals[chosen])

    def proposer_at(self, rounds: int) -> Validator:
        """The proposer `rounds` rounds after this set's own (round 0 is `proposer`)."""
        return self.proposer if rounds == 0 else \
            self.copy_increment_proposer_priority(rounds).proposer

    # -- updates ------------------------------------------------------------------------------

    def apply_updates(self, updates: Sequence[ValidatorUpdate]) -> ValidatorSet:
        """CometBFT's UpdateWithChangeSet: a new set with `updates` applied (power 0 removes).

        Raises ValidatorSetError for a duplicate entry, the removal of an unknown validator, an
        update that would empty the set or overflow the total power. The proposer is kept (the
        caller increments next, as the chain does after every block).
        """
        if not updates:
            return self
        current = {v.pubkey: (v.power, v.proposer_priority) for v in self.validators}
        priorities = _apply_changes(current, [(u.pubkey, u.power) for u in updates])
        return _from_priorities(priorities, self._proposer)


def _neg(b: bytes) -> bytes:
    # max() with a key that prefers the *lower* id on equal priority: invert the bytes.
    return bytes(255 - x for x in b)


def _most_priority(validators: Sequence[Validator]) -> Validator:
    return max(validators, key=lambda v: (v.proposer_priority, _neg(v.id)))


def _rescale(prios: list[int], diff_max: int) -> list[int]:
    if diff_max <= 0:
        return prios
    diff = max(prios) - min(prios)
    if diff > diff_max:
        ratio = (diff + diff_max - 1) // diff_max
        return [_go_div(p, ratio) for p in prios]
    return prios


def _apply_changes(current: dict[bytes, tuple[int, int]],
                   changes: Sequence[tuple[bytes, int]]) -> dict[bytes, tuple[int, int]]:
    """pubkey -> (power, priority) after `changes`, rescaled and centred (updateWithChangeSet)."""
    seen: set[bytes] = set()
    for pubkey, power in changes:
        if pubkey in seen:
            raise ValidatorSetError(f"validator {pubkey.hex()} is updated twice")
        if power < 0 or power > MAX_TOTAL_VOTING_POWER:
            raise ValidatorSetError(f"voting power {power} is out of range")
        seen.add(pubkey)
    removals = [pk for pk, power in changes if power == 0]
    updates = [(pk, power) for pk, power in changes if power > 0]
    for pk in removals:
        if pk not in current:
            raise ValidatorSetError(f"cannot remove validator {pk.hex()}: not in the set")
    removed_power = sum(current[pk][0] for pk in removals)
    total_before_removals = sum(p for p, _ in current.values()) - removed_power
    for pk, power in sorted(updates, key=lambda u: u[1] - current.get(u[0], (0, 0))[0]):
        total_before_removals += power - current.get(pk, (0, 0))[0]
        if total_before_removals > MAX_TOTAL_VOTING_POWER:
            raise ValidatorSetError("the update would overflow the total voting power")
    total_before_removals += removed_power
    # A newcomer starts behind everyone: -1.125 x the total power.
    newcomer = -(total_before_removals + (total_before_removals >> 3))
    result = dict(current)
    for pk, power in updates:
        result[pk] = (power, current[pk][1] if pk in current else newcomer)
    for pk in removals:
        del result[pk]
    if not result:
        raise ValidatorSetError("the update would leave the validator set empty")
    total = sum(p for p, _ in result.values())
    keys = list(result)
    prios = _rescale([result[k][1] for k in keys], PRIORITY_WINDOW_SIZE_FACTOR * total)
    avg = sum(prios) // len(prios)
    return {k: (result[k][0], _clip(p - avg)) for k, p in zip(keys, prios, strict=True)}


def _from_priorities(priorities: dict[bytes, tuple[int, int]],
                     proposer: Validator | None) -> ValidatorSet:
    vals = [Validator(pk, power, prio) for pk, (power, prio) in priorities.items()]
    vals.sort(key=lambda v: (-v.power, v.id))
    return ValidatorSet(vals, proposer)
