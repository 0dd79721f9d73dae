"""Executor choice by weight and the bandwidth limiter: pure parts of the transfer agent."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from api.bandwidth import BandwidthLimiter, BandwidthParams, CapacityReached
from api.routing import Candidate, NoExecutor, choose, eligible

MODEL = "m"


def member(address, weight, models=(MODEL,), slot=False):
    return {"address": address, "weight": weight, "models": list(models),
            "ml_nodes": [{"node_id": "n", "model": models[0] if models else "",
                          "weight": weight, "poc_slot": slot}]}


def test_only_members_serving_the_model_with_weight_are_eligible():
    members = [member("a", 10), member("b", 0), member("c", 5, models=("other",)),
               member("d", 7, slot=True)]
    assert [c.address for c in eligible(members, MODEL, poc_running=False)] == ["a", "d"]
    # During a PoC only hosts with a node kept serving the model
    assert [c.address for c in eligible(members, MODEL, poc_running=True)] == ["d"]


def test_choice_follows_weight():
    rng = random.Random(1)
    candidates = [Candidate("a", 1), Candidate("b", 3)]
    counts = Counter(choose(candidates, rng).address for _ in range(4000))
    assert 0.70 < counts["b"] / 4000 < 0.80
    with pytest.raises(NoExecutor):
        choose([], rng, MODEL)


def params(**kw):
    base = dict(bytes_per_block=10_000, bytes_per_input_token=1, bytes_per_output_token=10,
                lifespan_blocks=4, hosts=2)
    base.update(kw)
    return BandwidthParams(**base)


def test_the_limiter_admits_up_to_the_hosts_share_and_releases():
    limiter = BandwidthLimiter(params())
    # share = 5000 bytes per block, over L + 1 = 5 slots: 25000 in flight
    bookings = [limiter.admit(100, prompt_tokens=0, max_tokens=1000) for _ in range(2)]
    assert limiter.in_use(100) == 20_000
    with pytest.raises(CapacityReached) as refused:
        limiter.admit(100, prompt_tokens=0, max_tokens=600)
    assert refused.value.retry_after_blocks == 5
    assert limiter.in_use(100) == 20_000  # a refusal books nothing
    limiter.release(bookings[0])
    limiter.admit(100, prompt_tokens=0, max_tokens=600)
    # Slots behind the current height stop counting
    assert limiter.in_use(100 + 5) == 0
    limiter.prune(1_000)
    assert limiter.in_use(1_000) == 0


def test_more_hosts_means_a_smaller_share():
    limiter = BandwidthLimiter(params(hosts=10))
    assert limiter.share == 1_000
    with pytest.raises(CapacityReached):
        limiter.admit(1, prompt_tokens=0, max_tokens=501)
