"""Collateral: deposit, withdrawal with unbonding of one epoch, slashing, and the weight it backs
once the grace period is over."""

from __future__ import annotations

import pytest

from chain.app.auth.state import module_address
from chain.app.collateral.state import slash
from chain.app.context import Context
from chain.store.kv import Overlay
from chain.types.msgs import MsgDepositCollateral, MsgWithdrawCollateral
from tests.chain.protocol.harness import GONKA, Host, Net

COLLATERAL = module_address("collateral")


@pytest.fixture
def hosts():
    return [Host(i) for i in range(4)]


def collateral(net, host):
    return net.query("collateral/participant", address=host.address)


def test_deposit_withdraw_and_unbonding_paid_after_one_epoch(tmp_path, hosts):
    net = Net(tmp_path / "s.db", hosts)
    net.register(*hosts)
    start = net.balance(hosts[0].address)
    net.ok((hosts[0].key, MsgDepositCollateral(participant=hosts[0].address, amount=5 * GONKA)))
    assert net.balance(hosts[0].address) == start - 5 * GONKA
    assert net.balance(COLLATERAL) == 5 * GONKA
    # Withdrawing more than the active balance is refused and changes nothing
    (r,) = net.send((hosts[0].key, MsgWithdrawCollateral(participant=hosts[0].address,
                                                         amount=6 * GONKA)))
    assert r.code == 1101
    assert collateral(net, hosts[0])["active"] == 5 * GONKA
    # A withdrawal in epoch 0 completes when epoch 1 becomes effective
    net.ok((hosts[0].key, MsgWithdrawCollateral(participant=hosts[0].address, amount=2 * GONKA)))
    view = collateral(net, hosts[0])
    assert view["active"] == 3 * GONKA
    assert view["unbonding"] == [{"completion_epoch": 1, "amount": 2 * GONKA}]
    net.epoch({h: 10 for h in hosts})
    assert collateral(net, hosts[0])["unbonding"] == []
    assert net.balance(hosts[0].address) == start - 3 * GONKA
    assert net.balance(COLLATERAL) == 3 * GONKA
    net.close()


def test_slash_cuts_active_and_unbonding_and_burns(tmp_path, hosts):
    net = Net(tmp_path / "s.db", hosts)
    net.ok((hosts[0].key, MsgDepositCollateral(participant=hosts[0].address, amount=1000)))
    net.ok((hosts[0].key, MsgWithdrawCollateral(participant=hosts[0].address, amount=400)))
    supply = net.query("bank/supply")["amount"]
    overlay = Overlay(net.app._store)
    ctx = Context(store=overlay, chain_id="x", height=net.height + 1, time_ns=0,
                  dispatch=lambda c, m: None)
    burned = slash(ctx, hosts[0].address, 2_000, "invalid")
    assert burned == 120 + 80
    # Applied to a copy of state: the accounting is exact
    from chain.app.bank.state import balance
    from chain.app.bank.state import supply as supply_of
    from chain.app.collateral.state import active, total_held, unbonding
    assert active(overlay, hosts[0].address) == 480
    assert [u.amount for u in unbonding(overlay, hosts[0].address)] == [320]
    assert supply_of(overlay) == supply - 200
    assert balance(overlay, COLLATERAL) == total_held(overlay) == 800
    net.close()


def test_after_the_grace_period_weight_needs_collateral(tmp_path, hosts):
    # Given the grace period is over from epoch 1: 20% of the weight counts freely, the rest
    # needs 1 ngonka of collateral per unit
    net = Net(tmp_path / "s.db", hosts, params={"collateral": {"grace_period_end_epoch": 0},
                                                  "poc": {"max_power_bps": 0}})
    net.register(*hosts)
    net.ok((hosts[0].key, MsgDepositCollateral(participant=hosts[0].address, amount=50)))
    net.ok((hosts[1].key, MsgDepositCollateral(participant=hosts[1].address, amount=10**6)))
    epoch = net.epoch({h: 100 for h in hosts})
    weights = net.weights(epoch)
    assert weights[hosts[0].address] == 20 + 50
    assert weights[hosts[1].address] == 100
    assert weights[hosts[2].address] == 20
