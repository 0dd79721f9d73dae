"""The unit-of-compute price: participants' proposals, and the weighted median that each epoch's
group fixes when it forms (gonka-chain.md 2.12 and 4.6).

Keys:
    epochs/uoc_proposal/<address>  -> UnitOfComputePriceProposal (the latest; never deleted)

The price of epoch N is the weighted median over N's group members: each member counts with its
weight and its latest proposal (the `default_unit_of_compute_price` param if it never proposed);
sorted by price ascending, the first price at which the cumulative weight reaches (W + 1) div 2,
W the total weight. It is informational: no cost is computed from it yet.

Pure integer arithmetic; this module must never read anything but the store it is given.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from chain.app.context import get_value, put_value
from chain.store.kv import KVReader, Overlay

PROPOSAL = b"epochs/uoc_proposal/"


class UnitOfComputePriceProposal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    participant: str
    price: int                      # ngonka per unit of compute
    height: int                     # the block that carried it
    epoch: int                      # the effective epoch then


def get_proposal(store: KVReader, address: str) -> UnitOfComputePriceProposal | None:
    return get_value(store, PROPOSAL + address.encode(), UnitOfComputePriceProposal)


def put_proposal(store: Overlay, proposal: UnitOfComputePriceProposal) -> None:
    put_value(store, PROPOSAL + proposal.participant.encode(), proposal)


def weighted_median(prices: Iterable[tuple[int, int]], default: int) -> int:
    """The weighted median of (price, weight) pairs: sorted by price ascending, the first price
    at which the cumulative weight reaches (W + 1) div 2. `default` when W is 0."""
    pairs = sorted((p, w) for p, w in prices if w > 0)
    target = (sum(w for _, w in pairs) + 1) // 2
    cumulative = 0
    for price, weight in pairs:
        cumulative += weight
        if cumulative >= target:
            return price
    return default


def group_price(store: KVReader, members: Iterable[tuple[str, int]], default: int) -> int:
    """The price of a group of (address, weight) members, each at its latest proposal or
    `default`."""
    def price_of(address: str) -> int:
        proposal = get_proposal(store, address)
        return default if proposal is None else proposal.price

    return weighted_median(((price_of(a), w) for a, w in members), default)
