"""The PoC fraud test: a one-sided binomial test on the number of nonces that failed validation.

Shared by the ML node (its verdict on a validated batch) and the API node (its MsgPocValidation
verdict over sampled positions); it lives with the PoC wire types so that both import one copy.

An honest host's valid nonce fails re-validation with a small probability (`mismatch_rate`,
5e-4 by default: hardware and kernels round differently near r_target). Among n checked nonces
the number of honest failures is then Binomial(n, mismatch_rate); a host is reported as a fraud
when observing at least as many failures as it had is less likely than `threshold`
(reference ML node: scipy `binomtest(k, n, p, alternative="greater")`, threshold 1e-7).

Pure and exact: the tail is summed term by term from a ratio recurrence anchored at one
log-space term, so values like 1e-12 keep full relative precision (no `1 - cdf` cancellation on
the small side). Must never do I/O or depend on scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Summation stops once a term adds less than this fraction to the sum; the terms past the mode
# shrink at least geometrically, so what is left is below double precision.
_NEGLIGIBLE = 1e-18


@dataclass(frozen=True)
class FraudVerdict:
    """`p_value` = P[X >= n_invalid] for an honest host; `fraud` iff p_value < threshold."""

    p_value: float
    fraud: bool


def _log_pmf(i: int, n: int, log_p: float, log_q: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_p + (n - i) * log_q)


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P[X >= k] for X ~ Binomial(n, p), exact to a few ulps relative in either tail."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    odds = p / (1.0 - p)
    mode = math.floor((n + 1) * p)
    if k > mode:
        # Upper side of the mode: terms decrease from i = k on. Sum them relative to term k.
        total, term, i = 1.0, 1.0, k
        while i < n:
            term *= (n - i) / (i + 1) * odds
            total += term
            i += 1
            if term < total * _NEGLIGIBLE:
                break
        return min(1.0, math.exp(_log_pmf(k, n, log_p, log_q)) * total)
    # k at or below the mode: the tail is at least about 1/2, so 1 - P[X <= k-1] loses nothing;
    # the lower tail's terms decrease from i = k-1 downwards.
    total, term, i = 1.0, 1.0, k - 1
    while i > 0:
        term *= i / (n - i + 1) / odds
        total += term
        i -= 1
        if term < total * _NEGLIGIBLE:
            break
    lower = math.exp(_log_pmf(k - 1, n, log_p, log_q)) * total
    return max(0.0, 1.0 - lower)


def fraud_test(n_checked: int, n_invalid: int, mismatch_rate: float,
               threshold: float) -> FraudVerdict:
    """Fraud iff P[Bin(n_checked, mismatch_rate) >= n_invalid] < threshold.

    An empty sample is p = 1.0, no fraud (nothing was claimed).
    """
    if not 0 <= n_invalid <= n_checked:
        raise ValueError(f"n_invalid {n_invalid} must be in [0, n_checked={n_checked}]")
    if n_checked == 0:
        return FraudVerdict(1.0, False)
    p_value = binomial_upper_tail(n_invalid, n_checked, mismatch_rate)
    return FraudVerdict(p_value, p_value < threshold)
