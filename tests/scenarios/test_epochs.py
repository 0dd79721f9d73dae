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


async def test_an_epoch_walks_its_stages_at_the_heights_the_params_give(tmp_path):
    # Given devnet-paced epochs (40 blocks; sprint 8, commit exchange 3, validation 6, new
    # validators 2 blocks later),
    params = {"epochs": {"epoch_length": 40, "first_poc_start": 20}}
    async with Network.create(tmp_path, params=params) as net:
        await net.wait_ready()
        seen: list[tuple[int, int, str]] = []            # (height, epoch, stage) as it changes

        async def epoch_2_serving() -> dict | None:
            s = await net.status()
            if not seen or seen[-1][1:] != (s["epoch"], s["stage"]):
                seen.append((s["height"], s["epoch"], s["stage"]))
            return s if (s["epoch"], s["stage"]) == (2, "inference") else None
        # when the network runs from epoch 1's inference stage into epoch 2's,
        await net.each_block(epoch_2_serving, what="epoch 2's inference stage")
        # then the stages come in the protocol's order, each once, and the epoch index moves
        # to 2 when its group takes over;
        assert [stage for _, _, stage in seen] == [
            "inference", "sprint", "commit_exchange", "poc_validation", "set_new_validators",
            "inference"], seen
        assert [epoch for _, epoch, _ in seen] == [1, 1, 1, 1, 1, 2], seen
        # each first seen at a height inside its range for epoch 2's PoC (it starts at 20 + 40),
        ranges = {"sprint": range(60, 68), "commit_exchange": range(68, 72),
                  "poc_validation": range(72, 78), "set_new_validators": range(78, 80)}
        for height, _, stage in seen[1:-1]:
            assert height in ranges[stage], (stage, height, seen)
        assert seen[-1][0] >= 79                 # the switch block (77 + 2) starts epoch 2
        # the next PoC's stages are announced at the heights the params give,
        poc = (await net._http("GET", f"{net.participants[0].public_url}/v1/epochs/latest")
               ).json()["poc"]
        assert (poc["poc_start"], poc["sprint_end_exclusive"], poc["commit_deadline"],
                poc["validation_end"], poc["set_new_validators"], poc["next_poc_start"]) == (
            100, 108, 111, 117, 119, 140)
        # and epoch 2's group has every host weighted.
        group = await net.query("epochs/group", epoch="2")
        assert {m["address"] for m in group["members"] if m["weight"] > 0} == \
            {p.account for p in net.participants}
