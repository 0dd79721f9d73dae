"""Scenario fixtures: a network shared by the tests of one module (built and started once; each
test runs in its own trio loop and reaches it through its public interfaces only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from testermint_py.network import Network

# Two validators expected per inference at any traffic: with three equal hosts, each of the two
# that did not execute an inference must re-execute it (p = min(1, 2 x 150 / 300)). The
# protocol's own rates sample: an inference nobody drew would stay `finished`, and a cheat could
# go uncaught by chance; a scenario must not depend on that draw.
EVERYONE_VALIDATES = {"min_validation_average_ppm": 2_000_000,
                      "min_validation_halfway_ppm": 2_000_000,
                      "max_validation_average_ppm": 2_000_000}


@contextmanager
def running_network(root, **options: Any) -> Iterator[Network]:
    """A `Network.build(root, **options)` with every process started, in epoch 1's inference
    stage with every ML node serving; its invariants checked after the module's tests (a
    failure there is an error of the last test's teardown), then stopped."""
    net = Network.build(root, **options)
    try:
        net.start_all()
        trio.run(net.wait_up)
        trio.run(net.wait_ready)
        yield net
        # After the module's scenarios: every node agrees, and the accounts balance.
        trio.run(net.check_invariants)
    finally:
        net.stop_all()
