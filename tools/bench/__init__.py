"""Benchmarks: each prints our figure, a named baseline run in the same process, and their ratio.

They are not tests and make no pass/fail claim about time; targets are stated in the issues.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """The shortest of `repeat` runs of `fn` in seconds, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result
