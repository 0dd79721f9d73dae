"""`gonka bench api` through main([...]) with tiny sizes: every figure's line is printed (the
benchmark makes no claim about time, and neither does this test). Cost: one two-host network
from genesis to epoch 1 (about 15 s)."""

from __future__ import annotations

import re


def test_bench_api_prints_latency_and_throughput_figures(gonka):
    result = gonka("bench", "api", "--requests", "3", "--concurrency", "2", "--seconds", "0.5")
    assert result.code == 0, result.err
    out = result.out
    for label in ("mock ML node directly", "through host A's API", "added by the two API hops"):
        assert re.search(rf"{re.escape(label)}\s+median\s+[-\d.]+ ms\s+p99\s+[-\d.]+ ms", out), out
    assert re.search(r"ratio [\d.]+x", out), out
    completed = re.search(r"completed 200s\s+(\d+) in\s+[\d.]+ s =\s+[\d.]+ requests/s", out)
    assert completed and int(completed.group(1)) > 0, out
    assert re.search(r"with every inference recorded on chain: last record after\s+[\d.]+ s "
                     r"=\s+[\d.]+ requests/s", out), out


def test_bench_api_rejects_nonsense_sizes(gonka):
    assert gonka("bench", "api", "--seconds", "0").code == 2
    assert gonka("bench", "api", "--concurrency", "none").code == 2
