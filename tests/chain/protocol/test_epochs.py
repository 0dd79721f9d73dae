"""Whole epochs through the state machine: PoC commits and validations give the weights, the cap
and the validator set; fraud, missing seeds and bad messages."""

from __future__ import annotations

import pytest

from tests.chain.protocol.harness import Host, Net


@pytest.fixture
def hosts():
    return [Host(i) for i in range(5)]


@pytest.fixture
def net(tmp_path, hosts):
    n = Net(tmp_path / "state.db", hosts)
    n.register(*hosts)
    yield n
    n.close()


def test_an_epoch_gives_committed_counts_as_weights_and_validator_powers(net, hosts):
    # Given five registered hosts that commit 100, 200, 300, 400 and 1000 nonces and vote
    # "no fraud" on each other
    counts = dict(zip(hosts, (100, 200, 300, 400, 1000), strict=True))
    epoch = net.epoch(counts)
    # Then the new group holds the counts, water-filled to the 25% cap: 300 of 1200
    weights = net.weights(epoch)
    assert [weights[h.address] for h in hosts] == [100, 200, 300, 300, 300]
    # And the validator set follows the weights once the switch block is committed
    assert net.validator_powers() == weights
