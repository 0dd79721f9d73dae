"""The per-host power cap (water-filling), as in the reference: no host keeps more than a share
m of the total after capping. m is raised to 1/2 for two hosts and 2/5 for three, and nothing is
capped for one host. Integer arithmetic only."""

from __future__ import annotations

from collections.abc import Mapping

BPS = 10_000


def effective_cap_bps(max_power_bps: int, hosts: int) -> int:
    """The share cap for `hosts` hosts; never below an equal share (a lower cap could only be
    met by cutting everyone to 0, which the reference's formula then does)."""
    if hosts == 2:
        floor = 5_000
    elif hosts == 3:
        floor = 4_000
    else:
        floor = 0
    return max(max_power_bps, floor, -(-BPS // hosts))


def power_cap(weights: Mapping[str, int], max_power_bps: int) -> int | None:
    """The weight above which every host is cut, or None when no one is cut.

    Sort ascending p_0..p_{n-1}, S_k = p_0 + ... + p_{k-1}. The first k with
    p_k > m (S_k + p_k (n - k)) fixes cap = floor(m S_k / (1 - m (n - k))) (cap = p_k when that
    denominator is <= 0).
    """
    n = len(weights)
    if n < 2 or max_power_bps <= 0:
        return None
    m = effective_cap_bps(max_power_bps, n)
    ordered = sorted(weights.values())
    below = 0
    for k, p in enumerate(ordered):
        if p * BPS > m * (below + p * (n - k)):
            denominator = BPS - m * (n - k)
            if denominator <= 0:
                return p
            return m * below // denominator
        below += p
    return None


def apply_cap(weights: Mapping[str, int], max_power_bps: int) -> dict[str, int]:
    cap = power_cap(weights, max_power_bps)
    if cap is None:
        return dict(weights)
    return {address: min(weight, cap) for address, weight in weights.items()}
