"""Reputation: one step per clean settled epoch up to 100, misses over the cutoff cost epochs.
Unit tests of the score over a bare store, then through settlements: a group's member records
carry the reputation computed when the group forms."""

from __future__ import annotations

import msgspec
import pytest

from chain.app.context import Context, put_value
from chain.app.participants.state import INVALID, get_participant, put_participant
from chain.app.reputation.params import ReputationParams
from chain.app.reputation.score import (
    ReputationRecord,
    get_record,
    miss_cost_nano,
    record_epoch,
    reputation,
    score,
)
from chain.store.kv import EmptyReader, Overlay
from tests.chain.protocol.harness import COUNTS, CheckedNet, Host

ADDRESS = Host(0).address


def bare_ctx(**params) -> Context:
    store = Overlay(EmptyReader())
    if params:
        put_value(store, b"params/reputation", ReputationParams(**params))
    return Context(store=store, chain_id="test", height=1, time_ns=0, dispatch=lambda c, m: None)


def test_reputation_grows_by_one_step_per_clean_epoch_up_to_100():
    ctx = bare_ctx()                        # defaults: epochs_to_max 30
    assert reputation(ctx.store, ADDRESS) == 0
    seen = []
    for _ in range(32):
        record_epoch(ctx, ADDRESS, inference_count=50, missed=0)
        seen.append(reputation(ctx.store, ADDRESS))
    # floor(100 * n / 30): 3, 6, 10, 13, ... 96, then 100 from 30 epochs on
    assert seen[:4] == [3, 6, 10, 13]
    assert seen[28] == 96
    assert seen[29:] == [100, 100, 100]
    assert get_record(ctx.store, ADDRESS) == ReputationRecord(epochs=32, miss_cost_nano=0)


def test_misses_over_the_cutoff_cost_their_ratio_in_epochs():
    p = ReputationParams()                  # cutoff 1%, penalty 1.0
    assert miss_cost_nano(p, served=100, missed=1) == 0               # 1% is not over 1%
    assert miss_cost_nano(p, served=100, missed=2) == 20_000_000      # 0.02 epoch
    assert miss_cost_nano(p, served=3, missed=1) == 333_333_333       # floored nano-epochs
    assert miss_cost_nano(p, served=10, missed=30) == 3_000_000_000   # a ratio above 1
    # Serving nothing and missing 3: costs 3 epochs (the reference's ratio would be 0)
    assert miss_cost_nano(p, served=0, missed=3) == 3_000_000_000
    assert miss_cost_nano(p, served=0, missed=0) == 0
    double = ReputationParams(miss_requests_penalty_bps=20_000)
    assert miss_cost_nano(double, served=100, missed=2) == 40_000_000
    # Score: 10 epochs, one of them missing half its requests (0.5 epoch)
    ctx = bare_ctx(epochs_to_max=10)
    for _ in range(9):
        record_epoch(ctx, ADDRESS, 100, 0)
    record_epoch(ctx, ADDRESS, 100, 50)
    assert reputation(ctx.store, ADDRESS) == 95     # floor(100 * 9.5 / 10)
    # Never below 0
    assert score(ReputationRecord(epochs=2, miss_cost_nano=5 * 10**9), 10) == 0
    assert score(ReputationRecord(epochs=11, miss_cost_nano=10**9), 10) == 100


@pytest.fixture
def hosts():
    return [Host(i) for i in range(5)]


@pytest.fixture
def net(tmp_path, hosts):
    n = CheckedNet(tmp_path / "state.db", hosts)
    n.register(*hosts)
    yield n
    n.close()


def reputations(net, epoch: int) -> dict[str, int]:
    return {m["address"]: m["reputation"] for m in net.group(epoch)["members"]}


def test_settled_epochs_raise_reputation_in_later_groups(net, hosts):
    counts = dict(zip(hosts, COUNTS, strict=True))
    net.epoch(counts)                       # epoch 1 (settles genesis epoch 0: no record)
    net.epoch(counts)                       # epoch 2's group forms before epoch 1 is settled
    assert set(reputations(net, 2).values()) == {0}

    # Given host 0 missed 5 of its 10 requests in epoch 2 (a miss ratio of 1/1)
    def misses(ctx: Context) -> None:
        p = get_participant(ctx.store, hosts[0].address)
        put_participant(ctx.store, msgspec.structs.replace(
            p, stats=msgspec.structs.replace(p.stats, inference_count=5, missed_requests=5)))
    net.poke(misses)
    net.epoch(counts)                       # epoch 3: one settled epoch (devnet max: 10)
    assert set(reputations(net, 3).values()) == {10}
    net.epoch(counts)                       # epoch 4: two settled epochs
    rep = reputations(net, 4)
    # Then the clean hosts have 2/10, host 0 lost one epoch to its misses
    assert rep[hosts[0].address] == 10
    assert all(rep[h.address] == 20 for h in hosts[1:])


def test_an_invalid_epoch_does_not_count(net, hosts):
    counts = dict(zip(hosts, COUNTS, strict=True))
    net.epoch(counts)

    def mark_invalid(ctx: Context) -> None:
        p = get_participant(ctx.store, hosts[4].address)
        put_participant(ctx.store, msgspec.structs.replace(p, status=INVALID))
    net.poke(mark_invalid)
    net.epoch(counts, seeds=hosts)          # settles epoch 1: host 4 was INVALID
    net.epoch(counts)
    rep = reputations(net, 3)
    assert rep[hosts[4].address] == 0
    assert rep[hosts[0].address] == 10
