"""The status rules (reference 6.2, exact): consecutive invalidations, ramp-up, and the z-score
rule at its exact boundary. The consequences of INVALID (group, validator set, collateral) are
exercised end to end in test_validation.py."""

from __future__ import annotations

import pytest

from chain.app.participants.state import EpochStats, Participant
from chain.app.reputation.status import status_for
from chain.app.validation.params import ValidationParams

P = ValidationParams()  # fpr 0.05, min_ramp_up_measurements 10


def host(consecutive: int = 0, **stats) -> Participant:
    return Participant(address="gonka1x", inference_url="http://x", validator_key=b"k" * 32,
                       ml_nodes=(), join_height=1, consecutive_invalid=consecutive,
                       stats=EpochStats(**stats))


def test_five_consecutive_invalidations_make_a_host_invalid():
    # 0.05^4 = 6.25e-6 is not below 1e-6; 0.05^5 = 3.1e-7 is
    assert status_for(host(4, inference_count=100, validated=100), P) == "active"
    assert status_for(host(5, inference_count=100, validated=100), P) == "invalid"
    # Even while ramping up
    assert status_for(host(5, inference_count=1), P) == "invalid"


def test_a_larger_false_positive_rate_tolerates_longer_runs():
    params = ValidationParams(false_positive_rate_ppm=100_000)  # 0.1^6 = 1e-6 is not below
    assert status_for(host(6, inference_count=100, validated=100), params) == "active"
    assert status_for(host(7, inference_count=100, validated=100), params) == "invalid"


def test_ramping_until_min_measurements():
    assert status_for(host(inference_count=0), P) == "ramping"
    assert status_for(host(inference_count=9, invalidated=9), P) == "ramping"
    assert status_for(host(inference_count=10), P) == "active"


@pytest.mark.parametrize(("validated", "invalidated", "expected"), [
    (9, 1, "active"),      # 0.1 - 0.05 = 0.05; 0.05^2 * 10 = 0.025 <= 0.0475
    (8, 2, "invalid"),     # 0.15^2 * 10 = 0.225 > 0.0475
    (0, 0, "active"),      # nothing measured yet
    (100, 0, "active"),    # below the false positive rate
])
def test_z_score_rule(validated, invalidated, expected):
    assert status_for(host(inference_count=10, validated=validated,
                           invalidated=invalidated), P) == expected


def test_z_of_exactly_one_is_not_invalid():
    # fpr 0.2, n = 25: (7/25 - 0.2)^2 * 25 = 0.16 = fpr(1 - fpr), so z = 1 exactly
    params = ValidationParams(false_positive_rate_ppm=200_000)
    assert status_for(host(inference_count=25, validated=18, invalidated=7), params) == "active"
    assert status_for(host(inference_count=25, validated=17, invalidated=8), params) == "invalid"
