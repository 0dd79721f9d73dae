"""Acceptance scenarios: cluster and epochs (gonka-testermint.md section 5, items 1-3), on three
participants started by testermint_py.network (chain node, API node, mock ML node each, every
one its own process)."""

from __future__ import annotations

import pytest

from testermint_py.mock_mlnode import MockScript
from testermint_py.network import MODEL, Network, ParticipantSpec

pytestmark = pytest.mark.slow

WEIGHTS = (150, 150, 150)


async def test_a_fresh_network_gives_every_honest_host_its_pow_weight(tmp_path):
    # Given three hosts whose ML nodes each find 150 valid nonces per PoC,
    specs = [ParticipantSpec(mock=MockScript(weight=w, weight_per_batch=w)) for w in WEIGHTS]
    async with Network.create(tmp_path, specs=specs) as net:
        # when the first PoC has run and epoch 1 serves inference,
        await net.wait_ready()
        # then each host is in epoch 1's group with its weight, each is a validator with that
        # power, and each API node lists its ML node serving the model;
        group = await net.query("epochs/group", epoch="1")
        weights = {m["address"]: m["weight"] for m in group["members"]}
        assert weights == {p.account: 150 for p in net.participants}
        validators = await net.query("validators/set")
        assert sorted(v["power"] for v in validators) == [150, 150, 150]
        for p in net.participants:
            [node] = (await net.admin(p.index, "GET", "nodes")).json()
            assert (node["actual"], node["served_model"]) == ("INFERENCE", MODEL)
        # and every node agrees on every block, with the supply and escrow accounted for.
        await net.check_invariants()
