"""Reconnection delays: exponential back-off with jitter, capped (pure; the RNG is passed in).

Delay n (n = 0, 1, ...) is min(maximum, initial * multiplier**n) scaled down by a random factor in
[1 - jitter, 1], so nodes that lost a peer together do not all redial in lockstep, and no delay
ever exceeds `maximum`. A successful connection calls `reset`. No clock and no sleeping here: the
shell sleeps for what `next_delay` says.
"""

from __future__ import annotations

import random


class Backoff:
    __slots__ = ("initial", "maximum", "multiplier", "jitter", "_rng", "attempts")

    def __init__(self, *, initial: float, maximum: float, rng: random.Random,
                 multiplier: float = 2.0, jitter: float = 0.2) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("back-off needs 0 < initial <= maximum")
        if multiplier < 1 or not 0 <= jitter < 1:
            raise ValueError("back-off needs multiplier >= 1 and 0 <= jitter < 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        base = min(self.initial * self.multiplier ** self.attempts, self.maximum)
        # The exponent stops growing once the cap is reached, so it never overflows a float.
        if base < self.maximum:
            self.attempts += 1
        return base * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0
