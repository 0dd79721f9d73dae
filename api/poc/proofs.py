"""The PoC proof endpoint's wire types and the validator's check of an answer.

A host commits `MsgPocCommit{epoch, count, root}`: `root` is the Merkle root (native/MERKLE.md)
over `poc_leaf(nonce, distance)` of its valid nonces sorted ascending and unique. A validator asks
the host's API node for sampled positions (`PocProofRequest`); the host answers each position
with its leaf, the leaf's Merkle proof and the right-hand neighbour's leaf and proof
(`PocProofResponse`). `verify_items` accepts an answer only if every proof holds against the
committed root and count and every neighbour's nonce is strictly greater: a list with a
duplicate or out of order is caught wherever a sampled position meets it.

Pure: no I/O. The server side (building answers) is `api.poc.nonce_store.NonceList.answer`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

import native
from chain.types.common import Address, Hash32, Height, check_address
from chain.types.msgs.poc import MAX_POC_COUNT
from chain.types.poc import Nonce, poc_leaf
from native.merkle_spec import Proof

# Far above the chain's `validation_sample_size` (200); bounds one answer at ~10 MB of JSON.
MAX_POSITIONS = 4096
Position = Annotated[int, Meta(ge=0, lt=MAX_POC_COUNT)]
# Finite in practice: poc_leaf refuses anything else, and then the proof cannot hold.
LeafDistance = Annotated[float, Meta(ge=0.0)]


class PocProofRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Validator -> host: the leaves at `positions` of the list committed for `epoch`."""

    epoch: Height
    positions: Annotated[list[Position], Meta(min_length=1, max_length=MAX_POSITIONS)]

    def __post_init__(self) -> None:
        if len(set(self.positions)) != len(self.positions):
            raise ValueError("positions must be distinct")


class NeighbourLeaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The leaf right after a sampled one (position + 1) and its proof."""

    nonce: Nonce
    distance: LeafDistance
    proof: Proof


class ProvenLeaf(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The leaf at `position`, its proof, and its neighbour unless it is the last leaf."""

    position: Position
    nonce: Nonce
    distance: LeafDistance
    proof: Proof
    next: NeighbourLeaf | None = None


class PocProofResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Host -> validator: the committed `count` and `root`, and one item per requested position,
    in the request's order."""

    participant: Address
    epoch: Height
    count: Annotated[int, Meta(ge=1, le=MAX_POC_COUNT)]
    root: Hash32
    items: Annotated[list[ProvenLeaf], Meta(max_length=MAX_POSITIONS)]

    def __post_init__(self) -> None:
        check_address("participant", self.participant)


class VerifiedLeaf(msgspec.Struct, frozen=True):
    """A nonce proven to sit at `position` of the committed list, with its claimed distance."""

    position: int
    nonce: int
    distance: float


# --- errors: each names what was wrong; the validator counts any of them as a failed host -----


class PocProofError(Exception):
    """An answer that does not prove what was asked against the committed root."""


class WrongCommitment(PocProofError):
    def __init__(self, field: str, expected: object, got: object) -> None:
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"answer's {field} is {got!r}, the commitment's is {expected!r}")


class UnexpectedPositions(PocProofError):
    def __init__(self, requested: Sequence[int], got: Sequence[int]) -> None:
        self.requested, self.got = list(requested), list(got)
        super().__init__(f"asked for positions {self.requested}, answered {self.got}")


class PositionOutOfRange(PocProofError):
    def __init__(self, position: int, count: int) -> None:
        self.position, self.count = position, count
        super().__init__(f"position {position} is outside the committed list of {count}")


class BadLeaf(PocProofError):
    def __init__(self, position: int, reason: str) -> None:
        self.position, self.reason = position, reason
        super().__init__(f"leaf at position {position}: {reason}")


class BadProof(PocProofError):
    def __init__(self, position: int) -> None:
        self.position = position
        super().__init__(f"the Merkle proof of position {position} does not match the root")


class MissingNeighbour(PocProofError):
    def __init__(self, position: int, count: int) -> None:
        self.position, self.count = position, count
        super().__init__(f"position {position} of {count} came without its right-hand neighbour")


class NotIncreasing(PocProofError):
    """Two proven leaves whose nonces are not strictly increasing with their positions."""

    def __init__(self, position: int, nonce: int, later_position: int, later_nonce: int) -> None:
        self.position, self.nonce = position, nonce
        self.later_position, self.later_nonce = later_position, later_nonce
        what = "a duplicate" if nonce == later_nonce else "out of order"
        super().__init__(f"nonce {later_nonce} at position {later_position} follows nonce "
                         f"{nonce} at position {position}: {what}")


def _checked_leaf(root: bytes, count: int, position: int, nonce: int, distance: float,
                  proof: Proof) -> None:
    if not 0 <= position < count:
        raise PositionOutOfRange(position, count)
    try:
        leaf = poc_leaf(nonce, distance)
    except ValueError as e:
        raise BadLeaf(position, str(e)) from None
    if not native.verify_proof(root, leaf, position, count, proof):
        raise BadProof(position)


def verify_items(root: bytes, count: int, items: Sequence[ProvenLeaf],
                 positions: Sequence[int]) -> list[VerifiedLeaf]:
    """The sampled leaves, once every item is proven against (`root`, `count`).

    `positions` are the ones asked for; the items must answer exactly those, in that order.
    Raises a `PocProofError` naming the first fault: positions other than requested or out of
    range, an unparseable leaf, a proof that does not hold, a missing neighbour (every position
    but the last has one), a neighbour past the last leaf, or nonces that do not strictly
    increase with position (a duplicate or an unsorted list).
    """
    got = [item.position for item in items]
    if got != list(positions):
        raise UnexpectedPositions(positions, got)
    proven: dict[int, int] = {}  # position -> nonce, for the order check across items
    out = []
    for item in items:
        p = item.position
        _checked_leaf(root, count, p, item.nonce, item.distance, item.proof)
        proven[p] = item.nonce
        if item.next is None:
            if p < count - 1:
                raise MissingNeighbour(p, count)
        else:
            _checked_leaf(root, count, p + 1, item.next.nonce, item.next.distance,
                          item.next.proof)
            proven[p + 1] = item.next.nonce
        out.append(VerifiedLeaf(p, item.nonce, item.distance))
    # Adjacent pairs prove strict order locally; across items it costs nothing more to check.
    ordered = sorted(proven.items())
    for (p, n), (q, m) in itertools.pairwise(ordered):
        if m <= n:
            raise NotIncreasing(p, n, q, m)
    return out


def verify_response(participant: str, epoch: int, count: int, root: bytes,
                    request: PocProofRequest, response: PocProofResponse) -> list[VerifiedLeaf]:
    """`verify_items` on `response`, after checking it answers for `participant`'s commitment
    (`count`, `root` as recorded on chain for `epoch`)."""
    for field, expected, got in (("participant", participant, response.participant),
                                 ("epoch", epoch, response.epoch),
                                 ("count", count, response.count),
                                 ("root", root, response.root)):
        if expected != got:
            raise WrongCommitment(field, expected, got)
    return verify_items(root, count, response.items, request.positions)
