"""Double signing: the duplicate-vote evidence a block carries costs the validator's host its
power at once, `slash_double_sign_bps` of its collateral (burned) and its consensus key (a
tombstone); the same incident is punished once; evidence about a key the chain does not know
changes nothing."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.app import abci
from chain.crypto import ed25519
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.evidence import duplicate_vote_evidence, evidence_hash
from chain.types.msgs import (
    MlNodeSpec,
    MsgDepositCollateral,
    MsgRegisterParticipant,
    MsgWithdrawCollateral,
)
from chain.types.vote import Vote, VoteType, sign_vote
from tests.chain.builders import CHAIN_ID, T0
from tests.chain.protocol import test_invariants_property as prop
from tests.chain.protocol.harness import GONKA, MODEL, CheckedNet, Host, Net, coin_events

SLASH_BPS = 500  # the default slash_double_sign_bps


@pytest.fixture
def hosts():
    return [Host(i) for i in range(4)]


def block_id(seed: int) -> BlockID:
    return BlockID(hash=bytes([seed]) * 32, parts=PartSetHeader(total=1, root=bytes([seed]) * 32))


def double_vote(key: ed25519.PrivateKey, height: int, *, index: int = 3,
                type_: VoteType = VoteType.PREVOTE, round_: int = 0, seeds=(1, 2)):
    """Evidence that `key` voted for two blocks at (height, round_, type_)."""
    votes = [sign_vote(CHAIN_ID, Vote(type=type_, height=height, round=round_,
                                      block_id=block_id(s), time_ns=T0 + height,
                                      validator=key.id, validator_index=index,
                                      signature=bytes(64)), key) for s in seeds]
    return duplicate_vote_evidence(*votes)


def run_with_evidence(net: Net, *evidence, txs=()) -> abci.FinalizeBlockResult:
    """Commit the next block carrying `evidence` (and `txs`); the supply moves only by the
    block's mint and burn events."""
    before = net.query("bank/supply")["amount"]
    block = net.block(txs)
    block = msgspec.structs.replace(
        block, evidence=tuple(evidence),
        header=msgspec.structs.replace(block.header, evidence_hash=evidence_hash(evidence)))
    block.validate_basic()
    result = net.app.finalize_block(block)
    net.app.commit()
    net.last_block = block
    coins = list(result.events) + [e for r in result.tx_results for e in r.events]
    assert net.query("bank/supply")["amount"] - before == coin_events(coins)
    return result


def events(result: abci.FinalizeBlockResult, type_: str) -> list[dict[str, str]]:
    return [{a.key: a.value for a in e.attributes} for e in result.events if e.type == type_]


def collateral(net: Net, host: Host) -> tuple[int, list[int]]:
    view = net.query("collateral/participant", address=host.address)
    return view["active"], [u["amount"] for u in view["unbonding"]]


def test_a_double_signing_host_loses_its_power_and_part_of_its_collateral_once(tmp_path, hosts):
    # Given four hosts of weight 100 in epoch 1, the traitor holding 6,000 ngonka of active
    # collateral and 4,000 unbonding,
    net = CheckedNet(tmp_path / "s.db", hosts)
    net.register(*hosts)
    traitor = hosts[3]
    net.ok((traitor.key, MsgDepositCollateral(participant=traitor.address, amount=10_000)))
    assert net.epoch({h: 100 for h in hosts}) == 1
    net.ok((traitor.key, MsgWithdrawCollateral(participant=traitor.address, amount=4_000)))
    assert net.validator_powers()[traitor.address] == 100
    supply = net.supply()
    # when a block carries evidence that its consensus key prevoted two blocks,
    evidence = double_vote(traitor.consensus, net.height - 1)
    result = run_with_evidence(net, evidence)
    # then its validator power goes to 0 in this block's validator updates (and only its),
    assert result.validator_updates == (
        abci.ValidatorUpdate(pubkey=traitor.consensus.public_key, power=0),)
    assert traitor.address not in net.validator_powers()
    assert set(net.validator_powers().values()) == {100}
    # it leaves epoch 1's group,
    member = {m["address"]: m for m in net.group(1)["members"]}[traitor.address]
    assert (member["weight"], member["removed"]) == (0, "double_sign")
    assert net.group(1)["group"]["total_weight"] == 300
    # 5% of its active and of its unbonding collateral is burned, exactly,
    assert collateral(net, traitor) == (6_000 - 300, [4_000 - 200])
    assert net.supply() == supply - 500
    assert net.query("bank/invariants")["holds"]
    # the event names the validator, the height and the penalty,
    [event] = events(result, "double_sign")
    assert event == {
        "validator": traitor.consensus.id.hex(), "pubkey": traitor.consensus.public_key.hex(),
        "participant": traitor.address, "evidence_height": str(evidence.height), "round": "0",
        "vote_type": "prevote", "power": "100", "power_removed": "True",
        "collateral_burned": "500", "slash_bps": str(SLASH_BPS),
        "evidence": evidence.hash.hex()}
    # and the incident is on record.
    [record] = net.query("evidence/double_signs")
    assert (record["participant"], record["evidence_hash"], record["height"],
            record["collateral_burned"]) == (traitor.address, evidence.hash.hex(), net.height,
                                             500)

    # When the same evidence comes again, and evidence of the same incident's precommits,
    again = run_with_evidence(net, evidence, double_vote(traitor.consensus, net.height - 2,
                                                         type_=VoteType.PRECOMMIT))
    # then nothing more happens: no update, no burn, no second record.
    assert again.validator_updates == ()
    assert events(again, "double_sign") == [] and events(again, "burn") == []
    assert [e["reason"] for e in events(again, "double_sign_ignored")] == ["already punished"] * 2
    assert collateral(net, traitor) == (5_700, [3_800])
    assert len(net.query("evidence/double_signs")) == 1
    assert net.query("rewards/invariants")["ok"]
    net.close()


def test_a_tombstoned_key_gets_no_weight_until_the_host_registers_a_new_one(tmp_path, hosts):
    net = CheckedNet(tmp_path / "s.db", hosts)
    net.register(*hosts)
    traitor = hosts[3]
    run_with_evidence(net, double_vote(traitor.consensus, net.height))
    # The next group refuses the host while its registered key is the tombstoned one
    epoch = net.epoch({h: 100 for h in hosts})
    assert traitor.address not in net.weights(epoch)
    assert traitor.address not in net.validator_powers()
    # With a fresh consensus key it competes again
    traitor.consensus = ed25519.PrivateKey(bytes([123]) * 32)
    net.ok((traitor.key, MsgRegisterParticipant(
        participant=traitor.address, inference_url="http://host3.example:9000",
        validator_key=traitor.consensus.public_key,
        ml_nodes=(MlNodeSpec(node_id="node0", models=(MODEL,)),))))
    epoch = net.epoch({h: 100 for h in hosts})
    assert net.weights(epoch)[traitor.address] == 100
    assert net.validator_powers()[traitor.address] == 100
    net.close()


def test_a_double_sign_after_the_next_group_formed_keeps_the_host_out_of_it(tmp_path, hosts):
    # Given epoch 1's group has formed (end of PoC validation) but is not effective yet,
    net = CheckedNet(tmp_path / "s.db", hosts)
    net.register(*hosts)
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {h: 100 for h in hosts})
    net.run_to(stages["validation_start"] - 1)
    net.validate_poc(epoch, {(v, p): False for v in hosts for p in hosts if v is not p})
    net.run_to(stages["validation_end"])
    assert net.weights(epoch)[hosts[0].address] == 100
    # when host 0 double-signs, it leaves both groups at once,
    run_with_evidence(net, double_vote(hosts[0].consensus, net.height, index=0))
    assert net.weights(0)[hosts[0].address] == 0
    assert net.weights(epoch)[hosts[0].address] == 0
    # and the switch does not bring its power back.
    net.run_to(stages["set_new_validators"])
    assert net.effective() == epoch
    assert net.validator_powers() == {h.address: 100 for h in hosts[1:]}
    net.close()


def test_the_only_member_of_the_next_group_stays_in_it(tmp_path, hosts):
    # Given epoch 1's group formed with host 1 alone (host 0 committed nothing),
    net = CheckedNet(tmp_path / "s.db", hosts[:2])
    net.register(*hosts[:2])
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts[:2])
    net.commit_poc(epoch, {hosts[1]: 100})
    net.run_to(stages["validation_start"] - 1)
    net.validate_poc(epoch, {(hosts[0], hosts[1]): False})
    net.run_to(stages["validation_end"])
    assert net.weights(epoch) == {hosts[1].address: 100}
    # when host 1 double-signs, it loses its power in epoch 0 (host 0 still has some) but not
    # its place in epoch 1: the switch must not hand consensus an empty validator set.
    result = run_with_evidence(net, double_vote(hosts[1].consensus, net.height, index=1))
    assert result.validator_updates == (
        abci.ValidatorUpdate(pubkey=hosts[1].consensus.public_key, power=0),)
    assert net.weights(epoch) == {hosts[1].address: 100}
    net.run_to(stages["set_new_validators"])
    assert net.validator_powers() == {hosts[1].address: 100}
    net.close()


def test_a_genesis_validator_that_double_signs_in_epoch_0(tmp_path, hosts):
    # Genesis validators of power 10, no PoC yet: the operator's power goes to 0 all the same
    net = CheckedNet(tmp_path / "s.db", hosts)
    net.run_to(3)
    result = run_with_evidence(net, double_vote(hosts[1].consensus, 2, index=1))
    assert result.validator_updates == (
        abci.ValidatorUpdate(pubkey=hosts[1].consensus.public_key, power=0),)
    assert hosts[1].address not in net.validator_powers()
    [event] = events(result, "double_sign")
    assert (event["participant"], event["power"], event["collateral_burned"]) == (
        hosts[1].address, "10", "0")
    net.close()


def test_the_last_validator_keeps_its_power_but_pays(tmp_path):
    # A set of one Byzantine validator cannot be mended by removing it: consensus needs power
    host = Host(0)
    net = CheckedNet(tmp_path / "s.db", [host])
    net.ok((host.key, MsgDepositCollateral(participant=host.address, amount=1_000)))
    result = run_with_evidence(net, double_vote(host.consensus, net.height, index=0))
    assert result.validator_updates == ()
    assert net.validator_powers() == {host.address: 10}
    assert collateral(net, host) == (950, [])
    [record] = net.query("evidence/double_signs")
    assert (record["power"], record["power_removed"]) == (10, False)
    net.close()


def test_evidence_about_an_unknown_validator_changes_nothing(tmp_path, hosts):
    # Two identical chains; one gets a block with evidence about a key it never knew
    with_evidence = Net(tmp_path / "a.db", hosts)
    without = Net(tmp_path / "b.db", hosts)
    stranger = ed25519.PrivateKey(bytes([77]) * 32)
    result = run_with_evidence(with_evidence, double_vote(stranger, 1, index=0))
    without.run()
    assert result.validator_updates == ()
    assert [e["reason"] for e in events(result, "double_sign_ignored")] == ["unknown validator"]
    assert with_evidence.app.info().last_app_hash == without.app.info().last_app_hash
    assert with_evidence.query("evidence/double_signs") == []
    with_evidence.close()
    without.close()


def test_two_validators_double_signing_in_one_block_are_both_punished(tmp_path, hosts):
    net = CheckedNet(tmp_path / "s.db", hosts, params={"poc": {"max_power_bps": 10_000}})
    for h in hosts[2:]:
        net.ok((h.key, MsgDepositCollateral(participant=h.address, amount=2_000)))
    result = run_with_evidence(net, double_vote(hosts[2].consensus, 1, index=2),
                               double_vote(hosts[3].consensus, 1, index=3))
    assert {u.pubkey for u in result.validator_updates} == {
        hosts[2].consensus.public_key, hosts[3].consensus.public_key}
    assert sorted(e["participant"] for e in events(result, "double_sign")) == sorted(
        h.address for h in hosts[2:])
    assert [collateral(net, h) for h in hosts[2:]] == [(1_900, []), (1_900, [])]
    assert sorted(net.validator_powers()) == sorted(h.address for h in hosts[:2])
    net.close()



# -- double signs among random message sequences (the property test's driver and invariants) --

double_sign = st.tuples(st.just("double_sign"), st.integers(0, 3), st.integers(0, 3))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.one_of(prop.actions, double_sign), max_size=4),
                min_size=prop.BLOCKS, max_size=prop.BLOCKS))
def test_double_signs_among_random_messages_keep_coins_and_a_validator_set(tmp_path_factory,
                                                                           blocks):
    # Any host may double-sign at any time (evidence from up to 3 heights back), between
    # inferences, validations, collateral moves, claims, PoCs and settlements: every coin stays
    # accounted for, every incident is punished once, and some validator always has power.
    hosts = [prop.SeededHost(i) for i in range(4)]
    net = Net(tmp_path_factory.mktemp("ds") / "s.db", hosts, params=prop.PARAMS,
              extra_accounts=[(d.address, 10_000 * GONKA) for d in prop.DEVELOPERS])
    try:
        net.register(*hosts)
        net.epoch({h: 100 for h in hosts})
        driver = prop.Driver(net, hosts)
        supply = net.query("bank/supply")["amount"]
        punished: set[int] = set()
        for block_actions in blocks:
            txs = driver.protocol_txs()
            evidence = {}
            for action in block_actions:
                if action[0] == "double_sign":
                    _, i, back = action
                    ev = double_vote(hosts[i].consensus, max(1, net.height - back), index=i)
                    evidence[ev.hash] = ev
                else:
                    txs.extend(driver.txs_for(action))
            result = run_with_evidence(net, *evidence.values(), txs=txs)
            supply = prop.check_invariants(net, hosts, supply, result)
            for event in events(result, "double_sign"):
                index = next(i for i, h in enumerate(hosts)
                             if h.address == event["participant"])
                assert index not in punished
                punished.add(index)
            assert net.query("validators/set")
        assert len(net.query("evidence/double_signs")) == len(punished)
    finally:
        net.close()
