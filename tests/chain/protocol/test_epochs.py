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


def test_a_host_found_fraudulent_by_a_majority_gets_no_weight(net, hosts):
    # Given every host commits, and the others say host 4 cheated
    counts = {h: 100 for h in hosts}
    epoch = net.epoch(counts, fraud=[hosts[4]])
    # Then host 4 is not in the new group and holds no validator power
    weights = net.weights(epoch)
    assert hosts[4].address not in weights
    assert sorted(weights.values()) == [100] * 4
    assert hosts[4].address not in net.validator_powers()


def test_a_fraud_minority_does_not_remove_a_host(net, hosts):
    # Given only one of the other four validators (10 of 40 weight) says host 0 cheated
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {h: 50 for h in hosts})
    net.run_to(stages["validation_start"] - 1)
    verdicts = {(v, p): (v is hosts[1] and p is hosts[0]) for v in hosts for p in hosts
                if v is not p}
    net.validate_poc(epoch, verdicts)
    net.run_to(stages["set_new_validators"])
    # Then host 0 keeps its count
    assert net.weights(epoch)[hosts[0].address] == 50


def test_a_commit_needs_voters_with_half_the_other_weight_and_their_majority(net, hosts):
    # Given only hosts 0 and 1 validate (each of weight 10 of the genesis' 50),
    epoch = net.epoch({h: 100 for h in hosts}, validators=hosts[:2])
    weights = net.weights(epoch)
    # then hosts 2..4 had voters holding 20 of the others' 40 (a quorum: at least half) and
    # all of them said "no fraud": accepted; hosts 0 and 1 each had one voter (10 of 40): no
    # quorum, refused. The silent three do not veto the others by their silence.
    assert weights == {h.address: 100 for h in hosts[2:]}
    assert net.validator_powers() == weights


def test_without_a_quorum_of_voters_no_commit_is_accepted(net, hosts):
    # Given only host 0 validates (10 of the 40 the others hold, for each of hosts 1..4),
    epoch = net.epoch({h: 100 for h in hosts}, validators=hosts[:1])
    weights = net.weights(epoch)
    # then nobody is accepted and the genesis group carries over.
    assert weights == {h.address: 10 for h in hosts}
    assert net.validator_powers() == weights


def test_one_silent_host_of_three_does_not_freeze_the_weights(net, hosts):
    # Given a group of three equal hosts (only they mined in the last PoC),
    three = hosts[:3]
    net.epoch({h: 100 for h in three})
    # when in the next PoC one of them validates nobody (its ML node is down),
    epoch = net.epoch({h: 100 for h in three}, validators=three[:2])
    weights = net.weights(epoch)
    # then the two that voted vouch for each other and for the silent one (whose commit
    # stands too: its work was checked), each holding half of the others' weight.
    assert weights == {h.address: 100 for h in three}


def test_a_host_without_a_seed_commitment_gets_no_weight(net, hosts):
    epoch = net.epoch({h: 100 for h in hosts}, seeds=hosts[:4])
    assert hosts[4].address not in net.weights(epoch)


def test_the_validator_update_is_reported_in_the_switch_block(net, hosts):
    # Given a PoC run up to the block before the switch
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {h: 10 * (i + 1) for i, h in enumerate(hosts)})
    net.run_to(stages["validation_start"] - 1)
    net.validate_poc(epoch, {(v, p): False for v in hosts for p in hosts if v is not p})
    net.run_to(stages["set_new_validators"] - 1)
    assert net.effective() == 0
    # When the switch block is finalized
    result = net.run()
    # Then it reports every new (capped) power; consensus applies them two heights later
    powers = {u.pubkey: u.power for u in result.validator_updates}
    assert powers == {h.consensus.public_key: p
                      for h, p in zip(hosts, (10, 20, 30, 30, 30), strict=True)}
    assert net.effective() == epoch


def test_weights_carry_over_for_nodes_that_keep_serving_through_the_sprint(tmp_path):
    # Given two hosts with two ML nodes each: half of each host's nodes keep serving inference
    # through the next PoC, and their share of the weight carries over without mining (no cap:
    # two hosts would be held to equal weight)
    hosts = [Host(i) for i in range(2)]
    net = Net(tmp_path / "s.db", hosts, params={"poc": {"max_power_bps": 0}})
    net.register(*hosts, nodes=2)
    first = net.epoch({hosts[0]: 100, hosts[1]: 80})
    members = {m["address"]: m for m in net.group(first)["members"]}
    slots = {a: [n for n in m["ml_nodes"] if n["poc_slot"]] for a, m in members.items()}
    assert all(len(s) == 1 for s in slots.values())
    kept = {a: s[0]["weight"] for a, s in slots.items()}
    assert kept == {hosts[0].address: 50, hosts[1].address: 40}
    # When in the next PoC host 0 mines 30 with its free node and host 1 commits nothing
    second = net.epoch({hosts[0]: 30}, seeds=hosts)
    # Then host 0 has 50 + 30 and host 1 keeps its serving node's 40
    assert net.weights(second) == {hosts[0].address: 80, hosts[1].address: 40}
    net.close()
