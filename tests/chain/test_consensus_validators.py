"""Validator sets: CometBFT's proposer rotation on its own published examples, updates, hashes."""

from __future__ import annotations

import pytest

import native
from chain.app.abci import ValidatorUpdate
from chain.consensus.validators import Validator, ValidatorSet, ValidatorSetError
from chain.crypto import ed25519
from chain.types.codec import encode


def _keys_by_id(n: int) -> list[bytes]:
    """n public keys sorted by their ids: CometBFT's tests name validators by addresses whose
    order decides ties, so the keys standing in for them must sort the same way."""
    keys = [ed25519.PrivateKey(bytes([50 + i]) * 32).public_key for i in range(n)]
    return sorted(keys, key=ed25519.node_id)


def _set(*pairs: tuple[bytes, int]) -> ValidatorSet:
    return ValidatorSet.new([ValidatorUpdate(pubkey=k, power=p) for k, p in pairs])


def _names(keys: dict[str, bytes]) -> dict[bytes, str]:
    return {ed25519.node_id(pk): name for name, pk in keys.items()}


def test_proposer_sequence_matches_cometbft_test_proposer_selection_1():
    # Given CometBFT's TestProposerSelection1 set (bar < baz < foo by address),
    bar, baz, foo = _keys_by_id(3)
    names = _names({"foo": foo, "bar": bar, "baz": baz})
    vset = ValidatorSet.new([ValidatorUpdate(pubkey=foo, power=1000),
                             ValidatorUpdate(pubkey=bar, power=300),
                             ValidatorUpdate(pubkey=baz, power=330)])
    # when the proposer is taken and the priorities incremented 99 times,
    seen = []
    for _ in range(99):
        seen.append(names[vset.proposer.id])
        vset = vset.copy_increment_proposer_priority(1)
    # then the sequence is CometBFT's, word for word.
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz"
        " foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo"
        " foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo")
    assert " ".join(seen) == expected


def test_equal_powers_rotate_in_id_order():
    keys = _keys_by_id(3)
    vset = ValidatorSet.new([ValidatorUpdate(pubkey=k, power=100) for k in keys])
    order = []
    for _ in range(15):
        order.append(vset.proposer.pubkey)
        vset = vset.copy_increment_proposer_priority(1)
    assert order == keys * 5


# CometBFT asserts the first two of each; the third is computed by hand: at 400 the priorities
# go (100, 100, -200) -> +power (200, 200, 200), a tie won by the lowest id -> (-400, 200, 200)
# -> +power (-300, 300, 600) -> the heavy one again.
@pytest.mark.parametrize("big_power,expected_first_three", [(400, [2, 0, 2]), (401, [2, 2, 0])])
def test_a_heavier_validator_proposes_twice_in_a_row_only_past_the_threshold(
        big_power, expected_first_three):
    # Given CometBFT's TestProposerSelection2: two at 100 and one at 400 (or 401),
    keys = _keys_by_id(3)
    vset = ValidatorSet.new([ValidatorUpdate(pubkey=keys[0], power=100),
                             ValidatorUpdate(pubkey=keys[1], power=100),
                             ValidatorUpdate(pubkey=keys[2], power=big_power)])
    seen = []
    for _ in range(3):
        seen.append(keys.index(vset.proposer.pubkey))
        vset = vset.copy_increment_proposer_priority(1)
    # then at 400 it proposes once then yields to the lowest id; at 401 it proposes twice.
    assert seen == expected_first_three


def test_each_validator_proposes_in_proportion_to_its_power():
    keys = _keys_by_id(3)
    vset = _set(*zip(keys, (4, 5, 3), strict=True))
    counts = [0, 0, 0]
    for _ in range(120):
        counts[keys.index(vset.proposer.pubkey)] += 1
        vset = vset.copy_increment_proposer_priority(1)
    assert counts == [40, 50, 30]


def test_priorities_follow_cometbft_averaging_example_with_voting_power():
    # CometBFT's TestAveragingInIncrementProposerPriorityWithVotingPower: powers 10, 1, 1 from
    # priorities 0, incremented `times` at once; total 12.
    k0, k1, k2 = _keys_by_id(3)
    start = ValidatorSet([Validator(k0, 10), Validator(k1, 1), Validator(k2, 1)])
    total = 12
    cases = {  # times: (priorities, proposer index)
        1: ([10 - total, 1, 1], 0),
        2: ([2 * (10 - total), 2, 2], 0),
        3: ([3 * (10 - total), 3, 3], 0),
        4: ([4 * (10 - total), 4, 4], 0),
        5: ([4 * (10 - total) + 10, 5 - total, 5], 1),
        6: ([6 * 10 - 5 * total, 6 - total, 6], 0),
        7: ([7 * 10 - 6 * total, 7 - total, 7], 0),
        8: ([8 * 10 - 7 * total, 8 - total, 8], 0),
        9: ([9 * 10 - 7 * total, 9 - total, 9 - total], 2),
        10: ([10 * 10 - 8 * total, 10 - total, 10 - total], 0),
        11: ([11 * 10 - 9 * total, 11 - total, 11 - total], 0),
    }
    for times, (priorities, proposer) in cases.items():
        after = start.copy_increment_proposer_priority(times)
        assert [v.proposer_priority for v in after] == priorities, times
        assert after.proposer.pubkey == (k0, k1, k2)[proposer], times


def test_a_new_validator_starts_behind_everyone():
    # Given two validators of power 10 at priority 0,
    a, b, c = _keys_by_id(3)
    vset = ValidatorSet([Validator(a, 10), Validator(b, 10)])
    # when a third of power 10 joins,
    after = vset.apply_updates([ValidatorUpdate(pubkey=c, power=10)])
    # then it starts at -1.125 x 30 = -33, and all are centred on the average (-11):
    prio = {v.pubkey: v.proposer_priority for v in after}
    assert prio == {a: 11, b: 11, c: -22}


def test_updates_change_powers_add_and_remove_and_keep_cometbft_order():
    a, b, c, d = _keys_by_id(4)
    vset = _set((a, 10), (b, 20), (c, 30))
    assert [v.pubkey for v in vset] == [c, b, a]  # power descending
    after = vset.apply_updates([ValidatorUpdate(pubkey=b, power=0),
                                ValidatorUpdate(pubkey=d, power=40),
                                ValidatorUpdate(pubkey=a, power=30)])
    assert [(v.pubkey, v.power) for v in after] == sorted(
        [(d, 40), (a, 30), (c, 30)], key=lambda x: (-x[1], ed25519.node_id(x[0])))
    assert after.total_power == 100 and vset.total_power == 60  # the old set is untouched


@pytest.mark.parametrize("updates,reason", [
    ([("x", 0)], "not in the set"),
    ([("a", 0), ("b", 0)], "empty"),
    ([("a", 5), ("a", 6)], "twice"),
    ([("a", 2**62)], "out of range"),
], ids=["unknown-removal", "all-removed", "duplicate", "overflow"])
def test_impossible_updates_are_refused(updates, reason):
    a, b = _keys_by_id(2)
    x = ed25519.PrivateKey(bytes([99]) * 32).public_key
    named = {"a": a, "b": b, "x": x}
    vset = ValidatorSet.new([ValidatorUpdate(pubkey=a, power=10),
                             ValidatorUpdate(pubkey=b, power=10)])
    with pytest.raises(ValidatorSetError, match=reason):
        vset.apply_updates([ValidatorUpdate(pubkey=named[n], power=p) for n, p in updates])


def test_the_hash_is_the_merkle_root_of_pubkey_and_power_in_set_order():
    a, b = _keys_by_id(2)
    vset = ValidatorSet.new([ValidatorUpdate(pubkey=a, power=10),
                             ValidatorUpdate(pubkey=b, power=20)])
    assert vset.hash() == native.merkle_root([encode((b, 20)), encode((a, 10))])
    # Priorities are not part of it; powers are.
    assert vset.copy_increment_proposer_priority(3).hash() == vset.hash()
    assert vset.apply_updates([ValidatorUpdate(pubkey=a, power=11)]).hash() != vset.hash()


@pytest.mark.parametrize("powers,quorum", [((1, 1, 1, 1), 3), ((1, 1, 1), 3), ((60, 40), 67),
                                           ((10,), 7)])
def test_quorum_is_the_least_power_above_two_thirds(powers, quorum):
    keys = _keys_by_id(len(powers))
    vset = _set(*zip(keys, powers, strict=True))
    assert vset.quorum == quorum
    assert 3 * vset.quorum > 2 * vset.total_power >= 3 * (vset.quorum - 1)


def test_lookup_by_id():
    a, b = _keys_by_id(2)
    vset = _set((a, 1), (b, 2))
    index, validator = vset.by_id(ed25519.node_id(a))
    assert index == 1 and validator.pubkey == a and validator.id == ed25519.node_id(a)
    assert vset.by_id(bytes(20)) is None
