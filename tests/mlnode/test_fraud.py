"""The one-sided binomial fraud test against the reference ML node's numbers and exact sums."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from chain.types.poc_fraud import binomial_upper_tail, fraud_test

P = 5e-4
THRESHOLD = 1e-7


def exact_upper_tail(k: int, n: int, p: float) -> float:
    """P[X >= k] in rational arithmetic (p read as its shortest decimal): the ground truth."""
    q = Fraction(repr(p))
    a, b = q.numerator, q.denominator
    # P[X >= k] = 1 - P[X < k]; both sides exact, the shorter sum is taken.
    if k <= n // 2:
        lower = sum(comb(n, i) * a**i * (b - a) ** (n - i) for i in range(max(k, 0)))
        return float(1 - Fraction(lower, b**n))
    upper = sum(comb(n, i) * a**i * (b - a) ** (n - i) for i in range(k, n + 1))
    return float(Fraction(upper, b**n))


@pytest.mark.parametrize("k, expected", [(1, 0.095), (2, 4.7e-3), (3, 1.5e-4), (4, 3.7e-6),
                                         (5, 7.3e-8)])
def test_p_values_for_a_sample_of_200_match_the_reference(k, expected):
    assert binomial_upper_tail(k, 200, P) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("n, k_min", [(100, 5), (200, 5), (500, 7), (1000, 8), (2000, 11)])
def test_fewest_failures_that_are_fraud_match_the_reference(n, k_min):
    assert fraud_test(n, k_min, P, THRESHOLD).fraud
    assert not fraud_test(n, k_min - 1, P, THRESHOLD).fraud


def test_ten_of_two_thousand_is_just_honest_as_in_the_notebook():
    verdict = fraud_test(2000, 10, P, THRESHOLD)
    assert verdict.p_value == pytest.approx(1.09e-7, rel=0.02)
    assert not verdict.fraud


@pytest.mark.parametrize("k, n, p", [
    (0, 10, 0.3), (1, 1, 0.5), (3, 10, 0.3), (10, 10, 0.3), (7, 200, P), (12, 200, P),
    (40, 2000, P), (1, 2000, P), (2, 2000, 0.01), (30, 2000, 0.01), (5, 50, 0.5), (49, 50, 0.5),
])
def test_tails_are_exact_to_many_digits_even_far_out(k, n, p):
    exact = exact_upper_tail(k, n, p)
    assert binomial_upper_tail(k, n, p) == pytest.approx(exact, rel=1e-9, abs=0)


def test_a_tail_of_1e_12_keeps_its_precision():
    # Given tails around 1e-11 and 1e-13 (far below what 1 - cdf could resolve)
    for k in (7, 8):
        exact = exact_upper_tail(k, 200, P)
        assert 1e-14 < exact < 1e-10
        # Then they are computed to full relative precision
        assert binomial_upper_tail(k, 200, P) == pytest.approx(exact, rel=1e-9)


def test_large_samples_sum_only_the_terms_that_matter():
    # mean 500, sd ~22: 600 is ~4.5 sd out, 400 is ~4.5 sd below
    assert 1e-7 < binomial_upper_tail(600, 1_000_000, P) < 1e-4
    assert binomial_upper_tail(400, 1_000_000, P) > 0.99


def test_edges():
    assert binomial_upper_tail(0, 0, P) == 1.0
    assert binomial_upper_tail(1, 0, P) == 0.0
    assert binomial_upper_tail(3, 2, P) == 0.0
    assert binomial_upper_tail(1, 10, 0.0) == 0.0
    assert binomial_upper_tail(10, 10, 1.0) == 1.0
    with pytest.raises(ValueError):
        binomial_upper_tail(1, 10, 1.5)


def test_an_empty_batch_is_not_fraud():
    verdict = fraud_test(0, 0, P, THRESHOLD)
    assert verdict.p_value == 1.0 and not verdict.fraud


def test_more_failures_than_checks_is_a_bug():
    with pytest.raises(ValueError):
        fraud_test(5, 6, P, THRESHOLD)
