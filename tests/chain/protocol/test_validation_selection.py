"""The selection rule shared by the chain and the API node (reference 5.1, exact arithmetic):
the traffic curve at its boundaries, reputation, powers, and the draw against a direct
computation of BLAKE3(domain || seed || id)."""

from __future__ import annotations

from fractions import Fraction

import blake3
import msgspec
import pytest

from chain.app.validation.params import ValidationParams
from chain.app.validation.selection import (
    min_average,
    selection_draw,
    should_validate,
    validation_probability,
)

P = ValidationParams()  # min 0.01, halfway 0.05, max 1.0, full cutoff 10000, min cutoff 100


def draw(seed: bytes, inference_id: bytes) -> Fraction:
    """The draw, computed here from the spec's words rather than through the module."""
    digest = blake3.blake3(b"gonka/validation/select/v1\x00" + seed + inference_id).digest()
    return Fraction(int.from_bytes(digest[:8], "big"), 2**64 - 1)


def prob(**kw) -> Fraction:
    args = dict(executor_reputation=0, traffic_basis=0, validator_power=10, executor_power=10,
                total_power=1_000, params=P)
    args.update(kw)
    return validation_probability(**args)


@pytest.mark.parametrize(("traffic", "expected"), [
    (20_000, Fraction(1, 100)),
    (10_000, Fraction(1, 100)),                                    # >= full cutoff: min
    (9_999, Fraction(1, 100) + Fraction(4, 100) * 1 / 5_000),      # just below: rising
    (5_000, Fraction(5, 100)),                                     # full/2: halfway
    (4_999, Fraction(5, 100) + Fraction(95, 100) * 1 / 4_900),     # steeper segment
    (101, Fraction(5, 100) + Fraction(95, 100) * 4_899 / 4_900),
    (100, Fraction(1)),                                            # <= min cutoff: max
    (0, Fraction(1)),
])
def test_min_average_is_the_reference_piecewise_curve(traffic, expected):
    assert min_average(traffic, P) == expected


def test_min_average_is_continuous_and_falls_with_traffic():
    values = [min_average(t, P) for t in range(0, 10_002)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    # The two linear pieces meet at full/2 and at the min cutoff (no jumps).
    assert min_average(5_000, P) - min_average(5_001, P) < Fraction(1, 10_000)
    assert min_average(100, P) - min_average(101, P) < Fraction(1, 1_000)


def test_odd_full_cutoff_keeps_exact_halves():
    params = ValidationParams(full_validation_traffic_cutoff=10_001)
    # full/2 = 5000.5: T = 5000 is on the steep segment, 5001 on the gentle one.
    assert min_average(5_001, params) == (Fraction(1, 100)
                                          + Fraction(4, 100) * 5_000 / Fraction(10_001, 2))
    assert min_average(5_000, params) == (Fraction(5, 100) + Fraction(95, 100)
                                          * Fraction(1, 2) / (Fraction(10_001, 2) - 100))


def test_reputation_zero_means_one_validator_on_average_whatever_the_traffic():
    # target = minAvg + (max - minAvg)(1 - 0) = max = 1 expected validator
    for traffic in (0, 100, 5_000, 10_000, 50_000):
        assert prob(traffic_basis=traffic, executor_reputation=0) == Fraction(10, 990)


def test_reputation_100_gives_the_traffic_minimum():
    assert prob(traffic_basis=10_000, executor_reputation=100) == Fraction(1, 100) * 10 / 990
    assert prob(traffic_basis=5_000, executor_reputation=100) == Fraction(5, 100) * 10 / 990
    # Halfway in reputation is halfway between min and max.
    assert prob(traffic_basis=10_000, executor_reputation=50) == (
        (Fraction(1, 100) + Fraction(99, 100) / 2) * 10 / 990)


def test_probability_is_capped_at_one_and_zero_without_other_power():
    assert prob(validator_power=500, executor_power=10, total_power=510) == 1
    assert prob(executor_power=1_000, total_power=1_000) == 0
    assert prob(executor_power=1_000, total_power=900) == 0
    assert prob(validator_power=0) == 0


def test_validator_without_power_never_validates():
    for i in range(500):
        inference_id = blake3.blake3(i.to_bytes(4, "big")).digest() * 2
        assert not should_validate(b"\x07" * 32, inference_id, executor_reputation=0,
                                   traffic_basis=0, validator_power=0, executor_power=1,
                                   total_power=2, params=P)


def test_draw_matches_a_direct_blake3_computation():
    seed, inference_id = b"\x01" * 32, b"\x02" * 64
    assert selection_draw(seed, inference_id) == draw(seed, inference_id)
    # The draw depends on both the seed and the id.
    assert selection_draw(b"\x03" * 32, inference_id) != draw(seed, inference_id)
    assert selection_draw(seed, b"\x04" * 64) != draw(seed, inference_id)


def test_threshold_is_strict_r_below_p():
    # With target 1 (reputation 0, no traffic) p = validator_power / (total - executor), so a
    # denominator of 2^64 - 1 lets p equal the draw exactly.
    seed, inference_id = b"\x05" * 32, b"\x06" * 64
    r = draw(seed, inference_id)
    numerator = r.numerator * ((2**64 - 1) // r.denominator)
    assert Fraction(numerator, 2**64 - 1) == r
    common = dict(executor_reputation=0, traffic_basis=0, executor_power=3,
                  total_power=2**64 - 1 + 3, params=P)
    assert not should_validate(seed, inference_id, validator_power=numerator, **common)
    assert should_validate(seed, inference_id, validator_power=numerator + 1, **common)


def test_selection_rate_follows_the_probability():
    # p = 1/4 over 4000 fixed ids: the chosen share is close to 1/4, and each choice is
    # exactly r < p.
    seed = b"\x09" * 32
    chosen = 0
    for i in range(4_000):
        inference_id = blake3.blake3(b"id" + i.to_bytes(4, "big")).digest() * 2
        picked = should_validate(seed, inference_id, executor_reputation=0, traffic_basis=0,
                                 validator_power=25, executor_power=0, total_power=100,
                                 params=P)
        assert picked == (draw(seed, inference_id) < Fraction(1, 4))
        chosen += picked
    assert 900 <= chosen <= 1_100


def test_an_average_above_one_makes_every_other_host_validate_a_new_executor():
    # Given three equal hosts and two expected validators per inference (above the reference's
    # default of one: the averages are counts, not fractions),
    params = ValidationParams(min_validation_average_ppm=2_000_000,
                              min_validation_halfway_ppm=2_000_000,
                              max_validation_average_ppm=2_000_000)
    # then each of the other two must validate, whatever the reputation and traffic;
    for reputation, traffic in ((0, 0), (100, 50_000)):
        assert validation_probability(executor_reputation=reputation, traffic_basis=traffic,
                                      validator_power=150, executor_power=150, total_power=450,
                                      params=params) == 1
    # and one expected validator gives each of them one chance in two.
    assert validation_probability(executor_reputation=0, traffic_basis=0, validator_power=150,
                                  executor_power=150, total_power=450,
                                  params=ValidationParams()) == Fraction(1, 2)
    # Above a hundred expected validators is refused.
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_validation_average_ppm": 100_000_001}, ValidationParams)
