"""Random valid and invalid message sequences over several epochs (hypothesis), with the
economic invariants checked after every block:

* the total supply changes only by the block's recorded mint and burn events;
* no account balance is negative, and balances sum to the supply;
* the "inference" account holds exactly the escrow of the open inferences;
* the "work" account holds exactly the hosts' unsettled work coins, the coins on hold for
  disputed inferences and the settled, unclaimed work;
* the "rewards" and "vesting" accounts match their records, and "collateral" holds exactly the
  active plus unbonding collateral.

Each epoch's PoC runs automatically (seeds, commits, validations), so the sequence crosses
several settlements and epoch switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.app.auth.state import module_address
from chain.crypto import secp256k1
from chain.crypto.hashing import blake3_256
from chain.types.msgs import (
    MsgClaimRewards,
    MsgDepositCollateral,
    MsgSend,
    MsgValidation,
    MsgWithdrawCollateral,
)
from tests.chain.protocol.harness import (
    DEVELOPER,
    GONKA,
    Host,
    Net,
    coin_events,
    inference_request,
)

DEVELOPERS = (DEVELOPER, secp256k1.PrivateKey(bytes([98]) * 32))
PARAMS = {
    "inference": {"grace_period_end_epoch": 0, "expiration_blocks": 6},
    "validation": {"vote_period_blocks": 5},
    "rewards": {"reward_vesting_epochs": 2},
    "collateral": {"grace_period_end_epoch": 0, "base_weight_ratio_bps": 5_000},
}
BLOCKS = 100  # two and a half 40-block devnet epochs
MODULES = ("inference", "work", "rewards", "vesting", "collateral")


class SeededHost(Host):
    """A host whose seeds are a function of (host, epoch): hypothesis replays exactly."""

    def seed(self, epoch: int) -> bytes:
        return self.seeds.setdefault(epoch, blake3_256(f"{self.name}/{epoch}".encode()))


host_index = st.integers(0, 3)
actions = st.one_of(
    st.tuples(st.just("infer"), host_index, host_index, st.integers(0, 1),
              st.integers(0, 300), st.integers(1, 400), st.integers(0, 600),
              st.sampled_from(["both", "both", "both", "reverse", "start", "finish", "bad_dev",
                               "bad_ta"])),
    st.tuples(st.just("finish_later"), st.integers(0, 50)),
    st.tuples(st.just("validate"), st.integers(0, 50), host_index, st.booleans(),
              st.booleans()),
    st.tuples(st.just("deposit"), host_index, st.integers(1, 10**6)),
    st.tuples(st.just("withdraw"), host_index, st.integers(1, 10**6)),
    st.tuples(st.just("send"), st.integers(0, 1), host_index, st.integers(1, 10**7)),
    st.tuples(st.just("claim"), host_index, st.integers(0, 2), st.booleans()),
)


@dataclass
class Driver:
    net: Net
    hosts: list[SeededHost]
    requests: list = field(default_factory=list)
    counter: int = 0

    def txs_for(self, action: tuple) -> list[bytes]:
        net, hosts = self.net, self.hosts
        kind = action[0]
        if kind == "infer":
            _, ta, ex, dev, prompt, max_tokens, completion, mode = action
            self.counter += 1
            r = inference_request(
                hosts[ta], hosts[ex], n=self.counter, developer=DEVELOPERS[dev],
                prompt_tokens=prompt, max_tokens=max_tokens, completion_tokens=completion,
                ta_key=hosts[(ta + 1) % 4].key if mode == "bad_ta" else None,
                # The next block's time: inside the chain's request window at any height.
                timestamp_ns=net.now_ns())
            if mode == "bad_dev":
                r.start = _replace(r.start, inference_id=bytes(64))
            self.requests.append((r, hosts[ta], hosts[ex]))
            start, finish = net.tx(hosts[ta].key, r.start), net.tx(hosts[ex].key, r.finish)
            return {"both": [start, finish], "reverse": [finish, start], "start": [start],
                    "finish": [finish], "bad_dev": [start, finish],
                    "bad_ta": [start, finish]}[mode]
        if kind == "finish_later" and self.requests:
            r, _, ex = self.requests[action[1] % len(self.requests)]
            return [net.tx(ex.key, r.finish)]
        if kind == "validate" and self.requests:
            _, k, v, passed, revalidation = action
            # Mostly the latest requests: old ones belong to settled epochs.
            r, _, _ = self.requests[-1 - k % min(8, len(self.requests))]
            return [net.tx(hosts[v].key, MsgValidation(
                validator=hosts[v].address, inference_id=r.id,
                similarity_ppm=1_000_000 if passed else 0, revalidation=revalidation))]
        if kind == "deposit":
            h = hosts[action[1]]
            return [net.tx(h.key, MsgDepositCollateral(participant=h.address, amount=action[2]))]
        if kind == "withdraw":
            h = hosts[action[1]]
            return [net.tx(h.key, MsgWithdrawCollateral(participant=h.address,
                                                        amount=action[2]))]
        if kind == "send":
            dev = DEVELOPERS[action[1]]
            return [net.tx(dev, MsgSend(from_address=dev.address,
                                        to_address=hosts[action[2]].address, amount=action[3]))]
        if kind == "claim":
            _, h, back, right = action
            host = hosts[h]
            epoch = max(1, net.effective() - back)
            seed = host.seed(epoch) if right else bytes(32)
            return [net.tx(host.key, MsgClaimRewards(participant=host.address, epoch=epoch,
                                                     seed=seed))]
        return []

    def protocol_txs(self) -> list[bytes]:
        """The PoC messages due in the next block: seeds and commits right after the PoC
        start, "no fraud" verdicts at the start of validation."""
        net, hosts = self.net, self.hosts
        info = net.epoch_info()
        upcoming, poc = info["upcoming_epoch"], info["poc"]
        h = net.height + 1
        if upcoming is None:
            return []
        if h == poc["poc_start"] + 1:
            from chain.types.inference import seed_commitment
            from chain.types.msgs import MsgPocCommit, MsgSubmitSeed
            txs = []
            for i, host in enumerate(hosts):
                txs.append(net.tx(host.key, MsgSubmitSeed(
                    participant=host.address, epoch=upcoming,
                    commitment=seed_commitment(host.address, upcoming, host.seed(upcoming)))))
                txs.append(net.tx(host.key, MsgPocCommit(
                    participant=host.address, epoch=upcoming, count=100 + 10 * i,
                    root=bytes(32))))
            return txs
        if h == poc["validation_start"]:
            from chain.types.msgs import MsgPocValidation
            return [net.tx(v.key, MsgPocValidation(validator=v.address, participant=p.address,
                                                   epoch=upcoming, fraud=False, checked=1,
                                                   failed=0))
                    for v in hosts for p in hosts if v is not p]
        return []


def _replace(msg, **changes):
    import msgspec
    return msgspec.structs.replace(msg, **changes)


def check_invariants(net: Net, hosts, supply_before: int, result) -> int:
    supply = net.query("bank/supply")["amount"]
    events = list(result.events) + [e for r in result.tx_results for e in r.events]
    assert supply - supply_before == coin_events(events), net.height
    assert net.query("bank/invariants")["holds"]
    accounts = [h.address for h in hosts] + [d.address for d in DEVELOPERS] + [
        module_address(m) for m in MODULES]
    assert all(net.balance(a) >= 0 for a in accounts)
    inference = net.query("inference/invariants")
    assert inference["holds"], inference
    participants = net.query("participants/all")
    unsettled = sum(p["coin_balance"] for p in participants)
    held = net.query("validation/held")["total"]
    unclaimed = 0
    for h in hosts:
        r = net.app.query("rewards/settlement", {"address": h.address})
        if r.code == 0:
            import msgspec
            unclaimed += msgspec.json.decode(r.value)["work"]
    assert net.balance(module_address("work")) == unsettled + held + unclaimed, net.height
    rewards = net.query("rewards/invariants")
    assert rewards["ok"], rewards
    collateral = sum(c["active"] + sum(u["amount"] for u in c["unbonding"])
                     for c in (net.query("collateral/participant", address=h.address)
                               for h in hosts))
    assert net.balance(module_address("collateral")) == collateral
    return supply


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(actions, max_size=4), min_size=BLOCKS, max_size=BLOCKS))
def test_random_message_sequences_keep_every_coin_accounted_for(tmp_path_factory, blocks):
    hosts = [SeededHost(i) for i in range(4)]
    net = Net(tmp_path_factory.mktemp("prop") / "s.db", hosts, params=PARAMS,
              extra_accounts=[(d.address, 10_000 * GONKA) for d in DEVELOPERS])
    try:
        net.register(*hosts)
        # Epoch 1 first, so that the model is served from the first random block on.
        net.epoch({h: 100 for h in hosts})
        driver = Driver(net, hosts)
        supply = net.query("bank/supply")["amount"]
        for block_actions in blocks:
            txs = driver.protocol_txs()
            for action in block_actions:
                txs.extend(driver.txs_for(action))
            result = net.run(txs)
            supply = check_invariants(net, hosts, supply, result)
        assert net.effective() >= 3  # the sequence crossed at least two settlements
    finally:
        net.close()
