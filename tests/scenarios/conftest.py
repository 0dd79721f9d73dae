"""Scenario fixtures: a network shared by the tests of one module (built and started once; each
test runs in its own trio loop and reaches it through its public interfaces only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from testermint_py.network import Network


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
