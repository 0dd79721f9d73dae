"""One whole economic cycle through the state machine: PoC gives weights, developers pay for
inferences, validators re-execute what their seeds select, the epoch is settled, hosts claim by
revealing their seeds, and the host that skipped its validation duty is refused and loses its
coins at the next settlement. Every coin is accounted for."""

from __future__ import annotations

import pytest

from chain.app import abci
from chain.app.auth.state import module_address
from chain.types.msgs import MsgClaimRewards, MsgValidation
from tests.chain.protocol.harness import DEVELOPER, GONKA, Host, Net, inference_request

PARAMS = {"inference": {"grace_period_end_epoch": 0}}


@pytest.fixture
def hosts():
    hosts = [Host(i) for i in range(3)]
    for i, h in enumerate(hosts):
        # Fixed seeds: RFC 6979 signatures make the inference ids fixed too, so which
        # validations are required is the same on every run.
        h.seeds[1] = bytes([7 + i]) * 32
    return hosts


def module_balances(net) -> dict[str, int]:
    return {m: net.balance(module_address(m))
            for m in ("inference", "work", "rewards", "vesting", "collateral")}


def pending(net, host: Host, epoch: int) -> list[str]:
    return net.query("validation/pending", validator=host.address,
                     seed=host.seeds[epoch].hex(), epoch=str(epoch))


def test_inference_fees_and_rewards_reach_the_hosts_that_did_their_duty(tmp_path, hosts):
    net = Net(tmp_path / "s.db", hosts, params=PARAMS,
              extra_accounts=[(DEVELOPER.address, 1_000 * GONKA)])
    net.register(*hosts)
    epoch = net.epoch({h: 100 for h in hosts})
    assert epoch == 1
    supply0 = net.query("bank/supply")["amount"]

    # When the developer pays for 24 inferences routed by host 0 to hosts 1 and 2
    requests = [inference_request(hosts[0], hosts[1 + n % 2], n=n) for n in range(24)]
    net.ok(*[(hosts[0].key, r.start) for r in requests],
           *[(hosts[1 + n % 2].key, r.finish) for n, r in enumerate(requests)])
    price = net.query("inference/inference", id=requests[0].id.hex())["per_token_price"]
    assert price > 0
    cost = (100 + 200) * price
    assert net.balance(module_address("work")) == 24 * cost
    assert net.balance(module_address("inference")) == 0

    # And hosts 0 and 1 validate everything their seeds select; host 2 skips its duty
    duty = {h: pending(net, h, 1) for h in hosts}
    assert duty[hosts[2]], "the fixed seeds must give host 2 some duty"
    assert all(duty[h] for h in hosts[:2])
    net.ok(*[(h.key, MsgValidation(validator=h.address, inference_id=bytes.fromhex(i),
                                   similarity_ppm=1_000_000))
             for h in hosts[:2] for i in duty[h]])
    assert pending(net, hosts[0], 1) == [] and pending(net, hosts[1], 1) == []

    # Then the next switch settles epoch 1: work coins (shared with validators) and rewards
    for h in hosts:
        h.seeds[2] = bytes([17 + hosts.index(h)]) * 32
    net.epoch({h: 100 for h in hosts})
    settlements = {h: net.query("rewards/settlement", address=h.address) for h in hosts}
    emission = net.query("rewards/emission", epoch="1")["capped"]
    assert sum(s["reward"] for s in settlements.values()) == emission
    assert sum(s["work"] for s in settlements.values()) == 24 * cost
    assert net.query("bank/supply")["amount"] == supply0 + emission

    # When hosts 0 and 1 claim with their seeds, they are paid exactly their settlement
    for h in hosts[:2]:
        before = net.balance(h.address)
        net.ok((h.key, MsgClaimRewards(participant=h.address, epoch=1, seed=h.seeds[1])))
        s = settlements[h]
        assert net.balance(h.address) == before + s["work"] + s["reward"]
    # And host 2, which skipped its validations, is refused and keeps nothing
    (r,) = net.send((hosts[2].key, MsgClaimRewards(participant=hosts[2].address, epoch=1,
                                                   seed=hosts[2].seeds[1])))
    assert r.code == 1003, r.log
    assert f"did not validate {len(duty[hosts[2]])} of the {len(duty[hosts[2]])}" in r.log

    # Then at the next settlement its unclaimed amount is burned
    supply_before = net.query("bank/supply")["amount"]
    for h in hosts:
        h.seeds[3] = bytes([27 + hosts.index(h)]) * 32
    net.epoch({h: 100 for h in hosts})
    lost = settlements[hosts[2]]["work"] + settlements[hosts[2]]["reward"]
    emission2 = net.query("rewards/emission", epoch="2")["capped"]
    assert net.query("bank/supply")["amount"] == supply_before + emission2 - lost
    balances = module_balances(net)
    assert balances["inference"] == 0 and balances["work"] == 0
    assert net.query("bank/invariants")["holds"]
    assert abci.OK == 0
