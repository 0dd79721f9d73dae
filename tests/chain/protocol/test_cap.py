"""The per-host power cap: water-filling as in the reference, in integers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.app.poc.cap import apply_cap, effective_cap_bps, power_cap


def test_reference_examples():
    assert power_cap({"a": 100}, 2_500) is None
    # Five hosts: 100..400 and 1000 -> 300 is 25% of 1200
    weights = dict(zip("abcde", (100, 200, 300, 400, 1000), strict=True))
    assert power_cap(weights, 2_500) == 300
    # Two hosts are held to 50%, three to 40%
    assert apply_cap({"a": 100, "b": 80}, 2_500) == {"a": 80, "b": 80}
    assert effective_cap_bps(2_500, 3) == 4_000
    # Nobody above the cap: nothing changes
    assert power_cap({k: 10 for k in "abcde"}, 2_500) is None
    assert power_cap(weights, 0) is None


@given(st.lists(st.integers(1, 10**12), min_size=2, max_size=40),
       st.integers(1, 10_000))
def test_after_the_cap_no_host_exceeds_its_share(values, bps):
    weights = {f"h{i}": v for i, v in enumerate(values)}
    capped = apply_cap(weights, bps)
    m = effective_cap_bps(bps, len(values))
    assert max(capped.values()) * 10_000 <= m * sum(capped.values())
    # Only hosts above the cap change, and the order of weights is kept
    cap = power_cap(weights, bps)
    for k, v in weights.items():
        assert capped[k] == (v if cap is None else min(v, cap))
    assert all(v >= 1 for v in capped.values())
