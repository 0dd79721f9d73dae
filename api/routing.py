"""Which executor a transfer agent sends a request to: a host serving the model, chosen at random
in proportion to its epoch weight (reference 1.9). Pure: the caller passes the group (the
`epochs/group` query of the effective epoch) and its random generator.

While a PoC runs (from its start until the new group becomes effective) only hosts with an ML
node that keeps serving this model through the PoC (`poc_slot`) are eligible: the others mine.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec


class Candidate(msgspec.Struct, frozen=True):
    address: str
    weight: int


class NoExecutor(Exception):
    """No host can serve the model now (the API answers 503)."""

    def __init__(self, model: str, poc_running: bool) -> None:
        why = " with a node kept serving through the PoC" if poc_running else ""
        super().__init__(f"no host serves model {model!r}{why} in the current epoch")
        self.model, self.poc_running = model, poc_running


def eligible(members: Iterable[Mapping[str, Any]], model: str, *,
             poc_running: bool) -> list[Candidate]:
    """The members (as the `epochs/group` query gives them) that may execute `model` now,
    sorted by address."""
    out = []
    for m in members:
        if m["weight"] <= 0 or model not in m["models"]:
            continue
        if poc_running and not any(n["poc_slot"] and n["model"] == model
                                   for n in m["ml_nodes"]):
            continue
        out.append(Candidate(address=m["address"], weight=m["weight"]))
    return sorted(out, key=lambda c: c.address)


def choose(candidates: Sequence[Candidate], rng: random.Random, model: str = "",
           poc_running: bool = False) -> Candidate:
    """One candidate, with probability weight / total weight."""
    total = sum(c.weight for c in candidates)
    if total <= 0:
        raise NoExecutor(model, poc_running)
    cumulative = []
    running = 0
    for c in candidates:
        running += c.weight
        cumulative.append(running)
    return candidates[bisect.bisect_right(cumulative, rng.randrange(total))]
