"""The per-model price: free (grace price) before grace_period_end_epoch, then dynamic from the
snapshot's base price, kept in millionths of a ngonka, moving at most 2% a block with the
sub-group's utilisation and never below the model's floor; and the whole-ngonka price an
inference locks at its first message."""

from __future__ import annotations

from fractions import Fraction

import pytest

from chain.app.inference.params import InferenceParams
from chain.app.inference.pricing import PRICE_SCALE, next_price
from chain.app.models.params import ModelSpec
from tests.chain.protocol.harness import DEVELOPER, MODEL, Net, inference_request
from tests.chain.protocol.test_inference import FUNDS, coin_balance, inference_net, models, record

S = PRICE_SCALE


def price_entry(net: Net, model: str = MODEL) -> dict:
    entry = next(p for p in net.query("inference/prices") if p["model"] == model)
    # The charged price is always the floor of the precise one
    assert entry["price"] == entry["precise_price"] // S
    return entry


def price(net: Net, model: str = MODEL) -> int:
    """The whole-ngonka price a new inference is charged."""
    return price_entry(net, model)["price"]


def precise(net: Net, model: str = MODEL) -> int:
    """The dynamic price in millionths of a ngonka."""
    return price_entry(net, model)["precise_price"]


def prices_over(net: Net, blocks: int, read=precise) -> list[int]:
    out = [read(net)]
    for _ in range(blocks):
        net.run()
        out.append(read(net))
    return out


@pytest.fixture
def dynamic(tmp_path):
    net, hosts = inference_net(
        tmp_path / "state.db",
        params={"inference": {"grace_period_end_epoch": 0}, "models": models(10_000, 9_000)})
    yield net, hosts
    net.close()


# -- the pure step ----------------------------------------------------------------------------

SPEC = ModelSpec(id=MODEL, base_per_token_price=10_000, min_per_token_price=1)
PARAMS = InferenceParams(utilization_window_s=10)   # low 40%, high 60%, elasticity 5%


@pytest.mark.parametrize(("tokens", "expected"), [
    (0, 9_800),            # u = 0: the largest fall, 2%
    (300, 9_950),          # u = 0.30: factor 1 - 0.10 x 0.05
    (400, 10_000),         # u = 0.40: inside the band
    (600, 10_000),         # u = 0.60: inside the band
    (800, 10_100),         # u = 0.80: factor 1 + 0.20 x 0.05
    (1_000_000, 10_200),   # far above: capped at +2%
])
def test_one_step_follows_the_utilisation_bands(tokens, expected):
    # capacity 100 tokens/s x 10 s window = 1000 tokens is u = 1; prices in millionths
    assert next_price(10_000 * S, tokens, 100, SPEC, PARAMS) == expected * S


def test_one_step_never_goes_below_the_floor_and_treats_no_capacity_as_one():
    spec = ModelSpec(id=MODEL, base_per_token_price=100, min_per_token_price=99)
    assert next_price(100 * S, 0, 100, spec, PARAMS) == 99 * S
    assert next_price(99 * S, 0, 100, spec, PARAMS) == 99 * S
    # Capacity 0 counts as 1 token/s: 10 tokens in 10 s is u = 1
    assert next_price(10_000 * S, 10, 0, SPEC, PARAMS) == 10_200 * S


def test_one_step_keeps_fractions_of_a_ngonka_so_small_prices_can_rise():
    # +2% of 10 ngonka is 0.2 ngonka: kept in the precise price, not floored away
    spec = ModelSpec(id=MODEL, base_per_token_price=10, min_per_token_price=1)
    assert next_price(10 * S, 1_000_000, 100, spec, PARAMS) == 10_200_000
    # The step floors the precise value (a millionth), never the whole ngonka
    assert next_price(10_000_001, 1_000_000, 100, spec, PARAMS) == 10_200_001
    # The ceiling is 10^9 ngonka
    top = ModelSpec(id=MODEL, base_per_token_price=10**9, min_per_token_price=1)
    assert next_price(10**9 * S, 1_000_000, 100, top, PARAMS) == 10**9 * S


# -- through blocks ---------------------------------------------------------------------------

def test_inference_is_free_during_the_grace_period_then_priced_from_the_base(tmp_path):
    # Given the devnet profile: grace until epoch 2, grace price 0, base price 10_000
    net, hosts = inference_net(tmp_path / "state.db", params={"models": models(10_000, 1)})
    try:
        ta, executor = hosts[0], hosts[1]
        assert price(net) == 0
        # When an inference runs in epoch 1
        req = inference_request(ta, executor)
        net.ok((ta.key, req.start), (executor.key, req.finish))
        # Then nothing is paid, but the executor's work still counts
        assert record(net, req)["escrow"] == 0
        assert net.balance(DEVELOPER.address) == FUNDS
        assert coin_balance(net, executor) == 0
        assert net.participant(executor)["stats"]["inference_count"] == 1
        # When epoch 2 becomes effective, the price is the base price
        net.epoch({h: 100 for h in hosts[:3]})
        assert price(net) == 10_000
        assert precise(net) == 10_000 * S
        # And from the next block it moves (down 2%: no traffic)
        assert prices_over(net, 2, read=price) == [10_000, 9_800, 9_604]
    finally:
        net.close()


def test_without_traffic_the_price_falls_2_percent_a_block_to_its_floor(dynamic):
    net, _ = dynamic
    seen = prices_over(net, 10)
    for old, new in zip(seen, seen[1:], strict=False):
        assert new == max(old * 98 // 100, 9_000 * S)
    assert seen[-1] == 9_000 * S
    assert price(net) == 9_000


def test_under_load_the_price_rises_at_most_2_percent_a_block(tmp_path):
    net, hosts = inference_net(
        tmp_path / "state.db",
        params={"inference": {"grace_period_end_epoch": 0}, "models": models(10_000, 100)})
    try:
        ta, executor = hosts[0], hosts[1]
        weights = net.weights(1)
        capacity = weights[ta.address] + weights[executor.address]
        window = 30  # devnet utilization_window_s
        # Given one inference of far more tokens than the sub-group serves in the window
        tokens = 10 * capacity * window
        req = inference_request(ta, executor, prompt_tokens=10, max_tokens=tokens,
                                completion_tokens=tokens)
        net.ok((ta.key, req.start), (executor.key, req.finish))
        done = net.height
        # When the blocks of the next window and a few more are committed
        seen = prices_over(net, window + 3)
        steps = list(zip(seen, seen[1:], strict=False))
        # Then every step is within 2%, up while the tokens are in the window, then down
        for old, new in steps:
            assert old * 98 // 100 <= new <= old * 102 // 100
        # (the 2% steps are exact in millionths here: 10_000 ngonka has no fraction to floor)
        rising = [new == old * 102 // 100 for old, new in steps]
        # Block done + k sees the usage of time done while (done + k) - window <= done
        assert rising == [True] * window + [False] * 3
        assert seen[-1] < seen[-2]
        assert done + window + 3 == net.height
    finally:
        net.close()


def test_an_inference_keeps_the_price_of_its_first_message(dynamic):
    net, hosts = dynamic
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor, prompt_tokens=100, max_tokens=500,
                            completion_tokens=200)
    # Given a finish recorded at price p
    net.ok((executor.key, req.finish))
    locked = price(net)
    assert record(net, req)["per_token_price"] == locked
    # When the price has fallen before the start arrives
    net.run()
    net.run()
    assert price(net) < locked
    net.ok((ta.key, req.start))
    # Then escrow and cost use the locked price
    rec = record(net, req)
    assert rec["per_token_price"] == locked
    assert rec["escrow"] == 600 * locked
    assert rec["actual_cost"] == 300 * locked
    assert net.balance(DEVELOPER.address) == FUNDS - 300 * locked


def test_the_pure_step_uses_exact_fractions():
    # 1/3 utilisation: factor 1 - (0.4 - 1/3) x 0.05 = 1 - 1/300; 30_000 x that = 29_900 exactly
    params = InferenceParams(utilization_window_s=3)
    spec = ModelSpec(id=MODEL, base_per_token_price=30_000, min_per_token_price=1)
    assert next_price(30_000 * S, 1, 1, spec, params) == 30_000 * S * (1 - Fraction(1, 300))
    # and 1 - 1/300 of 2 ngonka is 1_993_333.33 millionths: floored to 1_993_333
    assert next_price(2 * S, 1, 1, spec, params) == 1_993_333


def test_a_price_of_10_under_full_load_rises_by_at_most_2_percent_a_block(tmp_path):
    # Given the devnet base price of 10 ngonka (floor 1) and the grace period over
    net, hosts = inference_net(
        tmp_path / "state.db",
        params={"inference": {"grace_period_end_epoch": 0}, "models": models(10, 1)})
    try:
        ta, executor = hosts[0], hosts[1]
        weights = net.weights(1)
        capacity = weights[ta.address] + weights[executor.address]
        window = 30  # devnet utilization_window_s
        start = precise(net)
        assert start == 10 * S
        # When one inference uses far more tokens than the sub-group serves in the window
        tokens = 10 * capacity * window
        req = inference_request(ta, executor, prompt_tokens=10, max_tokens=tokens,
                                completion_tokens=tokens)
        net.ok((ta.key, req.start), (executor.key, req.finish))
        # Then while it is in the window the precise price rises every block by at most 2%
        # (floored to a millionth), and the charged price is its whole part
        seen = prices_over(net, window)
        for old, new in zip(seen, seen[1:], strict=False):
            assert old < new <= old * 102 // 100
        # The load's own block stepped down once (9.8: its tokens count from the next block);
        # 9.8 x 1.02^k >= 11 from k = 6: the charged price is above 10 within 6 blocks
        whole = [p // S for p in seen]
        first_up = next(i for i, p in enumerate(whole) if p > 10)
        assert first_up <= 6
        assert whole[-1] >= 17        # 9.8 x 1.02^30 = 17.75
        # And a new inference locks the whole-ngonka price of that moment
        late = inference_request(ta, executor, n=1)
        net.ok((ta.key, late.start))
        assert record(net, late)["per_token_price"] == price(net) == precise(net) // S
    finally:
        net.close()
