"""Unit-of-compute price proposals: a participant's latest proposal is kept with its height and
epoch, and each epoch's group fixes the weighted median of its members' proposals (the default
param for members that never proposed) when it forms."""

from __future__ import annotations

import msgspec
import pytest

from chain.app.epochs.unit_price import weighted_median
from chain.types.codec import DecodeError, validated
from chain.types.msgs import MsgSubmitUnitOfComputePriceProposal
from tests.chain.protocol.harness import Host, Net

DEFAULT = 100


def propose(host: Host, price: int) -> tuple:
    return (host.key, MsgSubmitUnitOfComputePriceProposal(participant=host.address, price=price))


@pytest.fixture
def hosts():
    return [Host(i) for i in range(5)]


@pytest.fixture
def net(tmp_path, hosts):
    n = Net(tmp_path / "state.db", hosts)
    n.register(*hosts)
    yield n
    n.close()


def proposal(net: Net, host: Host) -> dict | None:
    result = net.app.query("epochs/unit_of_compute_price_proposal",
                           {"participant": host.address})
    return msgspec.json.decode(result.value) if result.code == 0 else None


# -- the weighted median itself ---------------------------------------------------------------


@pytest.mark.parametrize(("pairs", "expected"), [
    # one heavy member outweighs four light ones, whatever their prices
    ([(5, 1), (6, 1), (7, 1), (8, 1), (1000, 10)], 1000),
    ([(1, 10), (500, 1), (600, 1), (700, 1), (800, 1)], 1),
    # W = 4, target (4 + 1) div 2 = 2: the lower of two equal halves
    ([(20, 2), (10, 2)], 10),
    # W = 5, target 3: 2 at 10 is not enough
    ([(10, 2), (20, 3)], 20),
    # the same price from several members adds up; zero weights do not count
    ([(30, 1), (30, 1), (10, 1), (90, 2), (1, 0)], 30),
    ([(42, 7)], 42),
])
def test_the_weighted_median_is_the_first_price_reaching_half_the_weight(pairs, expected):
    assert weighted_median(pairs, DEFAULT) == expected
    # the order the members come in does not matter
    assert weighted_median(list(reversed(pairs)), DEFAULT) == expected


def test_no_weight_gives_the_default():
    assert weighted_median([], DEFAULT) == DEFAULT
    assert weighted_median([(7, 0)], DEFAULT) == DEFAULT


# -- proposals on chain -----------------------------------------------------------------------


def test_a_proposal_is_kept_with_its_height_and_epoch_and_a_later_one_replaces_it(net, hosts):
    # Given no proposal yet, the query says so
    assert proposal(net, hosts[0]) is None
    assert net.app.query("epochs/unit_of_compute_price_proposal",
                         {"participant": hosts[0].address}).code == 3
    # When host 0 proposes 250 ngonka
    net.ok(propose(hosts[0], 250))
    # Then the proposal is stored with the block height and the effective epoch
    assert proposal(net, hosts[0]) == {"participant": hosts[0].address, "price": 250,
                                       "height": net.height, "epoch": 0}
    # And a later proposal overwrites it
    net.ok(propose(hosts[0], 7))
    assert proposal(net, hosts[0])["price"] == 7
    assert proposal(net, hosts[0])["height"] == net.height
    assert proposal(net, hosts[1]) is None


def test_only_participants_may_propose_and_a_price_must_be_positive(tmp_path):
    hosts = [Host(0), Host(1)]
    net = Net(tmp_path / "s.db", hosts)
    net.register(hosts[0])
    # A funded account that never registered is refused, and nothing is stored
    (r,) = net.send(propose(hosts[1], 50))
    assert r.code == 501 and "not a registered participant" in r.log
    assert proposal(net, hosts[1]) is None
    # A price of 0 (or less) never decodes, so it cannot even be signed
    for price in (0, -5):
        with pytest.raises(DecodeError):
            validated(MsgSubmitUnitOfComputePriceProposal(participant=hosts[0].address,
                                                          price=price))
    net.close()


def test_the_genesis_group_has_the_default_price(net):
    assert net.group(0)["group"]["unit_of_compute_price"] == DEFAULT


def test_the_next_group_fixes_the_weighted_median_of_its_members_proposals(net, hosts):
    # Given weights 100..140 (W = 600, half = 300) and proposals: host 4 (140) proposes 10,
    # host 3 (130) 20, host 0 (100) 40, host 2 (120) 90, and host 1 (110) never proposes (it
    # counts at the default, 100)
    net.ok(propose(hosts[4], 10), propose(hosts[3], 20), propose(hosts[0], 40),
           propose(hosts[2], 90))
    counts = dict(zip(hosts, (100, 110, 120, 130, 140), strict=True))
    # When epoch 1 forms
    epoch = net.epoch(counts)
    # Then sorted by price the cumulative weight is 140, 270, 370: the price is host 0's 40
    group = net.group(epoch)["group"]
    assert net.weights(epoch) == {h.address: counts[h] for h in hosts}
    assert group["unit_of_compute_price"] == 40
    # And host 2 alone moving from 90 to 15 moves the next epoch's median: sorted 10 (140),
    # 15 (120), 20 (130), the cumulative weight reaches 300 at 20
    net.ok(propose(hosts[2], 15))
    epoch = net.epoch(counts)
    assert net.group(epoch)["group"]["unit_of_compute_price"] == 20
    # The earlier epoch keeps the price it was formed with
    assert net.group(epoch - 1)["group"]["unit_of_compute_price"] == 40


def test_a_proposal_counts_from_the_group_formed_after_it(net, hosts):
    counts = {h: 100 for h in hosts}
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, counts)
    net.run_to(stages["validation_start"] - 1)
    net.validate_poc(epoch, {(v, p): False for v in hosts for p in hosts if v is not p})
    net.run_to(stages["validation_end"])
    # Given epoch 1's group formed with nobody's proposal: the default
    assert net.group(epoch)["group"]["unit_of_compute_price"] == DEFAULT
    # When three of five equal members propose 5 after the formation (still epoch 0 effective)
    net.ok(*[propose(h, 5) for h in hosts[:3]])
    assert proposal(net, hosts[0])["epoch"] == 0
    net.run_to(stages["set_new_validators"])
    # Then epoch 1 keeps the default, and epoch 2 forms at 5 (three of five is a majority)
    assert net.group(epoch)["group"]["unit_of_compute_price"] == DEFAULT
    epoch = net.epoch(counts)
    assert net.group(epoch)["group"]["unit_of_compute_price"] == 5


def test_the_default_price_is_a_param(tmp_path):
    hosts = [Host(i) for i in range(3)]
    net = Net(tmp_path / "s.db", hosts,
              params={"epochs": {"default_unit_of_compute_price": 777}})
    net.register(*hosts)
    assert net.group(0)["group"]["unit_of_compute_price"] == 777
    net.ok(propose(hosts[0], 1))
    epoch = net.epoch({h: 100 for h in hosts})
    # Two of three members at the default 777 outweigh the one proposal of 1
    assert net.group(epoch)["group"]["unit_of_compute_price"] == 777
    net.close()
