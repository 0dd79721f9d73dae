"""Acceptance scenarios: PoC weights and the validator set (gonka-testermint.md section 5, items
1 and 29-30, and the harness issue's "a host that cheats at PoC"), adapted to our protocol
(chain/app/PROTOCOL.md, poc): a host's weight is its committed count of distinct valid nonces
if validators holding more than half of the others' weight found no fraud in it, capped, and
its consensus power is that weight from the epoch switch on.

Three participants on one network, epochs of 40 blocks; the scenarios follow each other through
epochs 1-3 (each reads the epoch the previous one left the network in):
  * participant 2's ML node claims 200 nonces per PoC of which a quarter repeat earlier ones;
  * participant 1's ML node fakes half its nonces for one PoC (epoch 2), then comes back honest
    with twice the weight (epoch 3).
"""

from __future__ import annotations

import pytest

from testermint_py.mock_mlnode import MockScript
from testermint_py.network import Network, ParticipantSpec
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow

GENESIS_POWER = 10
HONEST = MockScript(weight=150, weight_per_batch=150)
# One batch of 200 claims; split_claims makes round(200 x 0.25) = 50 of them repeats of this
# batch's own valid nonces: 150 distinct valid nonces.
DUPLICATING = MockScript(weight=200, weight_per_batch=200, poc_duplicates=0.25)
DISTINCT = 150
FAKER, DUPLICATOR = 1, 2
SHORT_EPOCHS = {"epochs": {"epoch_length": 40, "first_poc_start": 20}}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    specs = [ParticipantSpec(mock=HONEST, power=GENESIS_POWER),
             ParticipantSpec(mock=HONEST, power=GENESIS_POWER),
             ParticipantSpec(mock=DUPLICATING, power=GENESIS_POWER)]
    with running_network(tmp_path_factory.mktemp("poc"), specs=specs,
                         params=SHORT_EPOCHS) as network:
        yield network


# -- what the chain says ------------------------------------------------------------------------

async def weights(net: Network, epoch: int) -> dict[str, int]:
    """Epoch `epoch`'s members with weight, by address."""
    group = await net.query("epochs/group", epoch=str(epoch))
    return {m["address"]: m["weight"] for m in group["members"] if m["weight"] > 0}


async def powers(net: Network) -> dict[str, int]:
    """The validators with power, by operator (the chain's table, in force at once)."""
    return {v["operator"]: v["power"] for v in await net.query("validators/set")
            if v["power"] > 0}


async def consensus_powers(net: Network) -> dict[int, int]:
    """Each participant's voting power as its own consensus engine has it now (0: out of the
    set); the chain's changes reach consensus two heights after they are made."""
    out = {}
    for p in net.participants:
        async with net.rpc(p.index) as rpc:
            v = (await rpc.status()).validator
        out[p.index] = v.voting_power if v is not None else 0
    return out


async def wait_consensus_powers(net: Network, want: dict[int, int]) -> None:
    seen: dict[int, int] = {}

    async def there() -> bool:
        seen.update(await consensus_powers(net))
        return seen == want
    await net.each_block(there, what=lambda: f"consensus powers {want} (now {seen})")


async def next_poc_epoch(net: Network) -> int:
    """The first epoch whose PoC has not started at the chain's latest height: the one a change
    made before this call takes part in."""
    async with net.rpc() as rpc:
        height = (await rpc.status()).latest_height
    now = await net.query("epochs/current", at_height=str(height))
    return now["effective_epoch"] + (1 if now["stage"] == "inference" else 2)


async def switch_to(net: Network, epoch: int) -> None:
    """Every API node sees `epoch` effective and serving."""
    for p in net.participants:
        await net.wait_stage(epoch, "inference", i=p.index)


def addresses(net: Network, *indexes: int) -> list[str]:
    return [net.participants[i].account for i in indexes]


# -- scenarios ----------------------------------------------------------------------------------

async def test_the_first_poc_replaces_genesis_powers_with_pow_weights(net):
    p0, p1, p2 = addresses(net, 0, 1, 2)
    # Given genesis validators of power 10 each, when epoch 1's group has formed from the first
    # PoC, then each host's weight is its distinct valid nonces: the duplicating host claimed
    # 200 but committed (and was weighed by) its 150 distinct ones. Nothing binds the cap
    # (40 % of 450 = 180 > 150).
    commits = {c["participant"]: c["count"] for c in await net.query("poc/commits", epoch="1")}
    assert commits == {p0: 150, p1: 150, p2: DISTINCT}
    assert await weights(net, 1) == {p0: 150, p1: 150, p2: DISTINCT}
    # The validators checked the duplicator's commitment (sorted, unique, every sample's
    # distance right) and found no fraud,
    verdicts = await net.query("poc/validations", epoch="1", participant=p2)
    assert {v["validator"]: v["fraud"] for v in verdicts} == {p0: False, p1: False}
    assert all(v["checked"] > 0 and v["failed"] == 0 for v in verdicts)
    # and each validator's power is its weight, in the chain's table and in every consensus
    # engine.
    assert await powers(net) == {p0: 150, p1: 150, p2: DISTINCT}
    await wait_consensus_powers(net, {0: 150, 1: 150, 2: DISTINCT})
    await net.check_invariants()


async def test_a_host_that_fakes_nonces_gets_no_weight_and_leaves_the_validator_set(net):
    p0, p1, p2 = addresses(net, 0, 1, 2)
    # When participant 1's ML node makes up half of the nonces it claims (below r_target, but
    # the PoC function says otherwise) before the next PoC,
    await net.set_mock(FAKER, poc_fraud=0.5)
    epoch = await next_poc_epoch(net)
    await switch_to(net, epoch)
    # then both honest validators recomputed its samples and voted fraud,
    verdicts = await net.query("poc/validations", epoch=str(epoch), participant=p1)
    assert {v["validator"]: v["fraud"] for v in verdicts} == {p0: True, p2: True}
    assert all(v["failed"] > 0 for v in verdicts)
    # so its commit did not count: it is out of the new group, while the honest hosts keep
    # their weight (two hosts: a cap of 50 %, which equal weights do not reach);
    assert await weights(net, epoch) == {p0: 150, p2: DISTINCT}
    # its validator has power 0, and consensus runs on the other two alone.
    assert await powers(net) == {p0: 150, p2: DISTINCT}
    await wait_consensus_powers(net, {0: 150, 1: 0, 2: DISTINCT})
    await net.check_invariants()


async def test_a_host_honest_again_returns_with_its_capped_weight_as_power(net):
    p0, p1, p2 = addresses(net, 0, 1, 2)
    # When the faker turns honest again, finding twice as many nonces as the others,
    await net.set_mock(FAKER, poc_fraud=0.0, weight=300, weight_per_batch=300)
    epoch = await next_poc_epoch(net)
    await switch_to(net, epoch)
    # then its commit is accepted (validators of the previous epoch, which it was not one of,
    # found no fraud),
    commits = {c["participant"]: c["count"] for c in
               await net.query("poc/commits", epoch=str(epoch))}
    assert commits[p1] == 300
    verdicts = await net.query("poc/validations", epoch=str(epoch), participant=p1)
    assert {v["validator"]: v["fraud"] for v in verdicts} == {p0: False, p2: False}
    # and it is back with its weight capped at 40 % of the total for three hosts: sorted
    # 150, 150, 300, the cap is floor(0.4 x 300 / (1 - 0.4)) = 200, 200 / 500 = 40 %;
    assert await weights(net, epoch) == {p0: 150, p1: 200, p2: DISTINCT}
    # it is a validator again, with that capped weight as its power.
    assert await powers(net) == {p0: 150, p1: 200, p2: DISTINCT}
    await wait_consensus_powers(net, {0: 150, 1: 200, 2: DISTINCT})
    await net.check_invariants()
