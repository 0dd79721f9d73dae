"""Rewards through whole epochs: the emission split by weight, claims with the revealed seed,
expiry of unclaimed amounts, vesting, forfeits of INVALID hosts and downtime slashing. Every
block is checked: the supply changes only by the block's mint and burn events."""

from __future__ import annotations

import msgspec
import pytest

from chain.app import abci
from chain.app.auth.state import module_address
from chain.app.bank.state import escrow
from chain.app.context import Context
from chain.app.participants.state import INVALID, EpochStats, get_participant, put_participant
from chain.app.rewards.emission import capped_emission, epoch_emission
from chain.app.rewards.params import RewardsParams
from chain.types.inference import seed_commitment
from chain.types.msgs import MsgDepositCollateral
from tests.chain.protocol.harness import COUNTS, GONKA, CheckedNet, Host

DEVNET_EMISSION = 1_000 * GONKA


@pytest.fixture
def hosts():
    return [Host(i) for i in range(5)]


def make_net(tmp_path, hosts, **kw) -> CheckedNet:
    net = CheckedNet(tmp_path / "state.db", hosts, **kw)
    net.register(*hosts)
    return net


@pytest.fixture
def net(tmp_path, hosts):
    n = make_net(tmp_path, hosts)
    yield n
    n.close()


def counts(hosts) -> dict[Host, int]:
    return dict(zip(hosts, COUNTS, strict=False))


def expected_split(weights: dict[str, int], total: int) -> dict[str, int]:
    sum_w = sum(weights.values())
    out = {a: w * total // sum_w for a, w in sorted(weights.items())}
    first = next(a for a, r in out.items() if r > 0)
    out[first] += total - sum(out.values())
    return out


def give_work(host: Host, amount: int, **stats):
    """A change crediting `host` with `amount` work coins (moved from its own balance into the
    "work" account, as a developer's payment would be) and the given EpochStats fields."""
    def change(ctx: Context) -> None:
        escrow(ctx, host.address, "work", amount)
        p = get_participant(ctx.store, host.address)
        put_participant(ctx.store, msgspec.structs.replace(
            p, coin_balance=p.coin_balance + amount,
            stats=msgspec.structs.replace(p.stats, earned=p.stats.earned + amount, **stats)))
    return change


# -- emission ----------------------------------------------------------------------------------

def test_emission_decays_exponentially_from_the_genesis_epoch():
    p = RewardsParams()
    # Mainnet: 323,000 GNK for the genesis epoch, e^-0.000475 less each epoch after
    assert epoch_emission(p, 0) == 0
    assert epoch_emission(p, 1) == 323_000 * GONKA
    assert epoch_emission(p, 2) == 322_846_611_432_668
    assert epoch_emission(p, 1 + 1459) == 161_519_733_365_923      # about half after 1459
    # No decay: a constant emission; before the genesis epoch: nothing
    flat = RewardsParams(initial_epoch_reward=7, decay_rate_ppb=0, genesis_epoch=5)
    assert [epoch_emission(flat, e) for e in (4, 5, 6, 1000)] == [0, 7, 7, 7]


def test_emission_never_takes_the_total_past_the_cap():
    p = RewardsParams(initial_epoch_reward=100, decay_rate_ppb=0, standard_reward_amount=250)
    assert capped_emission(p, 1, minted_so_far=0) == 100
    assert capped_emission(p, 3, minted_so_far=200) == 50
    assert capped_emission(p, 4, minted_so_far=250) == 0
    assert capped_emission(p, 4, minted_so_far=300) == 0


def test_emission_query(net):
    assert net.query("rewards/emission", epoch="1") == {
        "epoch": 1, "amount": DEVNET_EMISSION, "capped": DEVNET_EMISSION}
    assert net.query("rewards/emission", epoch="0")["amount"] == 0
    assert net.app.query("rewards/emission", {"epoch": "x"}).code == 2


# -- settlement --------------------------------------------------------------------------------

def test_epoch_rewards_are_split_by_weight_and_minted_exactly(net, hosts):
    # Given epoch 1 with weights 100..140 (settling genesis epoch 0 mints nothing)
    supply0 = net.supply()
    e1 = net.epoch(counts(hosts))
    assert net.supply() == supply0
    assert net.settlement(hosts[0]) is None
    weights = net.weights(e1)
    assert sorted(weights.values()) == list(COUNTS)
    # When epoch 1 ends
    before = net.supply()
    net.epoch(counts(hosts))
    # Then each member's reward is w * 1000 GNK // 600, the remainder to the first address
    want = expected_split(weights, DEVNET_EMISSION)
    assert sum(v for v in want.values()) == DEVNET_EMISSION
    first = min(weights)
    assert want[first] == weights[first] * DEVNET_EMISSION // 600 + 2
    for h in hosts:
        s = net.settlement(h)
        assert s["epoch"] == e1 and s["work"] == 0 and s["reward"] == want[h.address]
    # And the supply rose by exactly the emission, all of it held by the rewards account
    assert net.supply() - before == DEVNET_EMISSION
    assert net.query("rewards/totals")["minted"] == DEVNET_EMISSION
    inv = net.query("rewards/invariants")
    assert inv["ok"] and inv["rewards_balance"] == DEVNET_EMISSION
    # And every participant counts one more completed epoch
    assert all(net.participant(h)["epochs_completed"] == 1 for h in hosts)


def test_a_host_outside_the_group_gets_no_reward(tmp_path, hosts):
    # Given a sixth registered host that never commits PoC
    outsider = Host(9)
    net = make_net(tmp_path, [*hosts, outsider])
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    # Then it has nothing to claim, and the members share the whole emission
    assert net.settlement(outsider) is None
    assert sum(net.settlement(h)["reward"] for h in hosts) == DEVNET_EMISSION
    result = net.claim(outsider, 1)
    assert (result.code, result.codespace) == (1001, "rewards")
    net.close()


# -- claims ------------------------------------------------------------------------------------

def test_claim_with_the_committed_seed_pays_the_reward(net, hosts):
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    host = hosts[2]
    reward = net.settlement(host)["reward"]
    balance, supply = net.balance(host.address), net.supply()
    # When the host reveals its epoch-1 seed
    result = net.claim(host, 1)
    # Then it is paid its reward and the settlement is gone; no coin was created
    assert result.code == abci.OK, result.log
    assert net.balance(host.address) == balance + reward
    assert net.supply() == supply
    assert net.settlement(host) is None
    assert net.query("rewards/totals")["claimed_reward"] == reward
    assert net.query("rewards/invariants")["ok"]
    assert any(e.type == "rewards_claimed" for e in result.events)
    # And a second claim finds nothing
    again = net.claim(host, 1)
    assert again.code == 1001 and "no unclaimed settlement" in again.log


def test_bad_claims_are_refused_and_change_nothing(net, hosts):
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    host = hosts[0]
    stored = net.settlement(host)
    balance = net.balance(host.address)
    # Wrong seed
    wrong = net.claim(host, 1, seed=bytes(32))
    assert (wrong.code, wrong.codespace) == (1002, "rewards")
    # Another host's seed does not open this host's commitment either
    assert net.claim(host, 1, seed=hosts[1].seed(1)).code == 1002
    # Wrong epoch (the settlement is for epoch 1)
    other = net.claim(host, 2)
    assert other.code == 1001 and "is for epoch 1" in other.log
    assert net.claim(host, 0 + 3).code == 1001
    # Nothing changed
    assert net.balance(host.address) == balance
    assert net.settlement(host) == stored
    assert net.query("rewards/totals")["claimed_reward"] == 0


def test_claim_pays_work_coins_from_the_work_account(net, hosts):
    net.epoch(counts(hosts))
    # Given host 1 earned 5 GNK of work in epoch 1
    net.poke(give_work(hosts[1], 5 * GONKA, inference_count=3))
    net.epoch(counts(hosts))
    s = net.settlement(hosts[1])
    assert s["work"] == 5 * GONKA
    assert net.participant(hosts[1])["coin_balance"] == 0
    assert net.query("rewards/invariants")["unclaimed_work"] == 5 * GONKA
    work_before = net.balance(module_address("work"))
    balance = net.balance(hosts[1].address)
    # When it claims
    assert net.claim(hosts[1], 1).code == abci.OK
    # Then work and reward are paid, the work from the work account
    assert net.balance(hosts[1].address) == balance + 5 * GONKA + s["reward"]
    assert net.balance(module_address("work")) == work_before - 5 * GONKA
    assert net.query("rewards/totals")["claimed_work"] == 5 * GONKA


def test_unclaimed_amounts_are_burned_at_the_next_settlement(net, hosts):
    net.epoch(counts(hosts))
    net.poke(give_work(hosts[3], 2 * GONKA, inference_count=1))
    net.epoch(counts(hosts))
    # Given host 0 claims epoch 1 and the others do not
    assert net.claim(hosts[0], 1).code == abci.OK
    unclaimed = sum(net.settlement(h)["work"] + net.settlement(h)["reward"] for h in hosts[1:])
    before = net.supply()
    # When epoch 2 is settled
    net.epoch(counts(hosts))
    # Then the unclaimed amounts were burned and epoch 2's emission minted
    minted2 = epoch_emission(RewardsParams(initial_epoch_reward=DEVNET_EMISSION), 2)
    assert net.supply() - before == minted2 - unclaimed
    assert net.query("rewards/totals")["burned"] == unclaimed
    assert all(net.settlement(h)["epoch"] == 2 for h in hosts)
    # And epoch 1 can no longer be claimed
    assert net.claim(hosts[1], 1).code == 1001
    inv = net.query("rewards/invariants")
    assert inv["ok"] and inv["rewards_balance"] == minted2 and inv["unclaimed_work"] == 0
    assert net.balance(module_address("work")) == 0


def test_claimed_rewards_vest_over_the_following_settlements(tmp_path, hosts):
    net = make_net(tmp_path, hosts, params={"rewards": {"reward_vesting_epochs": 3}})
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    host = hosts[4]
    reward = net.settlement(host)["reward"]
    balance = net.balance(host.address)
    # When it claims, nothing is paid at once: the reward moves into vesting over 3 epochs
    assert net.claim(host, 1).code == abci.OK
    assert net.balance(host.address) == balance
    third = reward // 3
    slots = [third + reward % 3, third, third]
    assert net.query("rewards/vesting", address=host.address) == {
        "address": host.address, "slots": slots, "total": reward}
    assert net.balance(module_address("vesting")) == reward
    # Then each epoch switch pays one slot
    for i in range(3):
        net.epoch(counts(hosts), seeds=hosts)
        assert net.balance(host.address) == balance + sum(slots[: i + 1])
        assert net.query("rewards/invariants")["ok"]
    assert net.query("rewards/vesting", address=host.address)["slots"] == []
    assert net.balance(module_address("vesting")) == 0
    net.close()


def test_a_second_claim_merges_into_the_existing_schedule(tmp_path, hosts):
    net = make_net(tmp_path, hosts, params={"rewards": {"reward_vesting_epochs": 2}})
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    host = hosts[0]
    r1 = net.settlement(host)["reward"]
    assert net.claim(host, 1).code == abci.OK
    net.epoch(counts(hosts))        # pays r1's slot 0; epoch 2 settled
    r2 = net.settlement(host)["reward"]
    assert net.claim(host, 2).code == abci.OK
    assert net.query("rewards/vesting", address=host.address)["slots"] == [
        r1 // 2 + r2 // 2 + r2 % 2, r2 // 2]
    net.close()


# -- INVALID and downtime ----------------------------------------------------------------------

def test_an_invalid_host_forfeits_its_work_and_reward_and_starts_clean(net, hosts):
    net.epoch(counts(hosts))
    cheat = hosts[4]
    # Given host 4 earned 3 GNK in epoch 1 and is then found INVALID
    net.poke(give_work(cheat, 3 * GONKA, inference_count=2))

    def mark_invalid(ctx: Context) -> None:
        p = get_participant(ctx.store, cheat.address)
        put_participant(ctx.store, msgspec.structs.replace(p, status=INVALID,
                                                           consecutive_invalid=5))
    net.poke(mark_invalid)
    weights = net.weights(1)
    supply = net.supply()
    # When epoch 1 is settled (epoch 2's PoC runs without it)
    net.epoch(counts(hosts[:4]), seeds=hosts[:4])
    # Then it gets nothing, its work coins are burned, the others share the whole emission
    assert net.settlement(cheat) is None
    honest = {a: w for a, w in weights.items() if a != cheat.address}
    want = expected_split(honest, DEVNET_EMISSION)
    assert {h.address: net.settlement(h)["reward"] for h in hosts[:4]} == want
    assert net.supply() - supply == DEVNET_EMISSION - 3 * GONKA
    assert net.query("rewards/totals")["burned"] == 3 * GONKA
    # And it starts the next epoch clean but without the completed epoch
    p = net.participant(cheat)
    assert (p["status"], p["coin_balance"], p["consecutive_invalid"], p["epochs_completed"]) \
        == ("active", 0, 0, 0)
    assert p["stats"] == msgspec.to_builtins(EpochStats())
    assert net.participant(hosts[0])["epochs_completed"] == 1


def test_downtime_above_five_percent_slashes_collateral(net, hosts):
    net.ok((hosts[0].key, MsgDepositCollateral(participant=hosts[0].address, amount=1_000)),
           (hosts[1].key, MsgDepositCollateral(participant=hosts[1].address, amount=1_000)))
    net.epoch(counts(hosts))
    # Given host 0 missed 6 of 100 requests (over 5%) and host 1 missed 5 of 100 (not over)
    net.poke(give_work(hosts[0], 1, inference_count=94, missed_requests=6))
    net.poke(give_work(hosts[1], 1, inference_count=95, missed_requests=5))
    net.epoch(counts(hosts))
    # Then host 0 lost 10% of its collateral (burned), host 1 nothing
    assert net.query("collateral/participant", address=hosts[0].address)["active"] == 900
    assert net.query("collateral/participant", address=hosts[1].address)["active"] == 1_000
    # And the stats are reset for the next epoch
    assert net.participant(hosts[0])["stats"]["missed_requests"] == 0


def test_settlement_commitment_is_the_seed_committed_for_the_epoch(net, hosts):
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    for h in hosts:
        stored = net.settlement(h)["seed_commitment"]
        assert stored == msgspec.json.decode(msgspec.json.encode(
            seed_commitment(h.address, 1, h.seed(1))))


# -- validation duty ---------------------------------------------------------------------------

def test_a_claim_with_required_validations_not_done_is_refused(net, hosts, monkeypatch):
    net.epoch(counts(hosts))
    net.epoch(counts(hosts))
    host = hosts[1]
    required = [bytes([7]) * 64, bytes([3]) * 64]
    seen = []

    def duty(store, epoch, validator, seed):
        seen.append((epoch, validator, seed))
        return required
    # Given the seed selects two inferences the host never validated
    monkeypatch.setattr("chain.app.rewards.claims.handlers.required_validations", duty)
    stored, balance = net.settlement(host), net.balance(host.address)
    result = net.claim(host, 1)
    # Then the claim fails naming how many and the first id; nothing is paid
    assert (result.code, result.codespace) == (1003, "rewards")
    assert "2 of the 2" in result.log and (bytes([3]) * 64).hex() in result.log
    assert (1, host.address, host.seed(1)) in seen
    assert net.settlement(host) == stored and net.balance(host.address) == balance
    # And with no duty the same claim goes through
    monkeypatch.setattr("chain.app.rewards.claims.handlers.required_validations",
                        lambda *a: [])
    assert net.claim(host, 1).code == abci.OK


# -- hosts without a seed commitment -----------------------------------------------------------

def test_work_of_a_host_without_a_seed_is_claimable_with_any_seed(tmp_path, hosts):
    # Given a registered host outside the group (it committed no seed) that earned work coins
    outsider = Host(9)
    net = make_net(tmp_path, [*hosts, outsider])
    net.epoch(counts(hosts))
    net.poke(give_work(outsider, 4 * GONKA, inference_count=1))
    net.epoch(counts(hosts))
    s = net.settlement(outsider)
    assert (s["work"], s["reward"], s["seed_commitment"]) == (4 * GONKA, 0, "")
    balance = net.balance(outsider.address)
    # When it claims with an arbitrary seed, it is paid its work
    assert net.claim(outsider, 1, seed=bytes([1]) * 32).code == abci.OK
    assert net.balance(outsider.address) == balance + 4 * GONKA
    net.close()


def test_reward_coins_without_a_seed_commitment_cannot_be_claimed(net, hosts):
    from chain.app.bank.state import mint
    from chain.app.rewards.state import SettleAmount, put_settle_amount
    host = hosts[0]

    def orphan_reward(ctx: Context) -> None:
        mint(ctx, "rewards", 10)
        put_settle_amount(ctx.store, SettleAmount(participant=host.address, epoch=1, work=0,
                                                  reward=10, seed_commitment=b""))
    net.poke(orphan_reward)
    result = net.claim(host, 1)
    assert (result.code, result.codespace) == (1004, "rewards")
    assert net.settlement(host)["reward"] == 10


def test_split_and_spread_arithmetic():
    from chain.app.rewards.settlement import split_rewards
    from chain.app.rewards.vesting import spread
    # The remainder goes to the first address with a positive reward
    assert split_rewards({"c": 1, "a": 0, "b": 1}, 5) == {"a": 0, "b": 3, "c": 2}
    # Every share floors to 0: the heaviest (first address among equals) takes it all
    assert split_rewards({"b": 3, "a": 3, "c": 1}, 2) == {"a": 2, "b": 0, "c": 0}
    assert split_rewards({}, 5) == {} and split_rewards({"a": 1}, 0) == {}
    # Vesting: amount // N per slot, remainder to slot 0, merged into existing slots
    assert spread((), 10, 3) == (4, 3, 3)
    assert spread((5,), 10, 3) == (9, 3, 3)
    assert spread((1, 1, 1, 1), 4, 2) == (3, 3, 1, 1)
