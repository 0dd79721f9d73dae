"""Validation end to end through the app: real inferences (MsgStartInference + MsgFinishInference
signed by a developer, a transfer agent and the executor), first-round validations with work
sharing, invalidate/revalidate votes (decided early, or at their deadline), holds across an
epoch's settlement, five invalidations making a host INVALID, the required list, and every
rejection."""

from __future__ import annotations

import base64

import pytest

from chain.app.auth.state import module_address
from chain.app.validation.params import ValidationParams
from chain.app.validation.selection import should_validate
from chain.crypto.hashing import blake3_256
from chain.types.msgs import MsgDepositCollateral, MsgValidation
from tests.chain.protocol.harness import (
    DEVELOPER,
    GONKA,
    Host,
    InferenceRequest,
    Net,
    inference_request,
)

DEV = DEVELOPER
DEV_FUNDS = 1_000 * GONKA
WORK = module_address("work")
PRICE = 10                      # the devnet model's base price, kept fixed below
PROMPT, COMPLETION, MAX = 10, 21, 50
COST = (PROMPT + COMPLETION) * PRICE   # 310: splits with remainders
PASS, FAIL = 950_000, 100_000   # the devnet model's threshold is 900_000
# Inference is paid from epoch 0 and the price never moves (no utilisation band to leave).
PARAMS = {"inference": {"grace_period_end_epoch": 0, "stability_low_bps": 0,
                        "stability_high_bps": 10_000}}


# -- scenario helpers ------------------------------------------------------------------------

@pytest.fixture
def hosts():
    out = [Host(i) for i in range(5)]
    for h in out:  # fixed seeds: the selection draws are the same on every run
        h.seeds = {e: blake3_256(b"seed %d %d" % (h.key.secret[0], e)) for e in range(4)}
    return out


@pytest.fixture
def net(tmp_path, hosts):
    """Five hosts of weight 100 each (total 500) in effective epoch 1."""
    n = Net(tmp_path / "state.db", hosts, params=PARAMS, extra_accounts=[(DEV.address, DEV_FUNDS)])
    n.register(*hosts)
    assert n.epoch({h: 100 for h in hosts}) == 1
    yield n
    n.close()


class Counter:
    n = 0


def request(ta: Host, executor: Host) -> InferenceRequest:
    """A new request of DEV (PROMPT + MAX tokens, COMPLETION completed), signed by all three."""
    Counter.n += 1
    return inference_request(ta, executor, n=Counter.n, prompt_tokens=PROMPT, max_tokens=MAX,
                             completion_tokens=COMPLETION)


def infer(net: Net, executor: Host, ta: Host | None = None) -> bytes:
    """One completed inference executed by `executor`; its id."""
    ta = ta or next(h for h in net.hosts if h is not executor)
    req = request(ta, executor)
    net.ok((ta.key, req.start), (executor.key, req.finish))
    return req.id


def validate(net: Net, validator: Host, inference_id: bytes, similarity: int,
             revalidation: bool = False):
    (r,) = net.send((validator.key, MsgValidation(validator=validator.address,
                                                  inference_id=inference_id,
                                                  similarity_ppm=similarity,
                                                  revalidation=revalidation)))
    return r


def ok(net, validator, inference_id, similarity, revalidation=False):
    r = validate(net, validator, inference_id, similarity, revalidation)
    assert r.code == 0, r.log


def record(net: Net, inference_id: bytes) -> dict:
    return net.query("inference/inference", id=inference_id.hex())


def coins(net: Net, host: Host) -> int:
    return net.participant(host)["coin_balance"]


def vote(net: Net, inference_id: bytes) -> dict:
    return net.query("validation/votes", id=inference_id.hex())


def held(net: Net) -> int:
    return net.query("validation/held")["total"]


def b64(raw: str) -> bytes:
    return base64.b64decode(raw)


def work_is_owed(net: Net) -> None:
    """Within an epoch nothing is settled: the work account is exactly what is owed."""
    owed = sum(p["coin_balance"] for p in net.query("participants/all"))
    assert net.balance(WORK) == owed + held(net)


def run_next_epoch(net: Net, during) -> int:
    """Like Net.epoch, calling `during()` after the PoC validations, a few blocks before the
    switch (the running epoch is still effective then)."""
    hosts = net.hosts
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {h: 100 for h in hosts})
    net.run_to(stages["validation_start"] - 1)
    current = net.weights(net.effective())
    net.validate_poc(epoch, {(v, p): False for v in hosts for p in hosts
                             if v is not p and current.get(v.address, 0) > 0})
    during(stages)
    assert net.height < stages["set_new_validators"], "during() ran past the switch"
    net.run_to(stages["set_new_validators"])
    assert net.effective() == epoch
    return epoch


# -- work sharing ----------------------------------------------------------------------------

def test_passing_validations_share_the_work_equally(net, hosts):
    h0, h1, h2, *_ = hosts
    # Given an inference executed by h0 for 310 ngonka
    iid = infer(net, h0)
    assert coins(net, h0) == COST and record(net, iid)["status"] == "finished"
    # When h1 passes it
    ok(net, h1, iid, PASS)
    # Then it is validated and the cost is split 155 / 155
    rec = record(net, iid)
    assert rec["status"] == "validated" and rec["validated_by"] == [h1.address]
    assert (coins(net, h0), coins(net, h1)) == (155, 155)
    assert net.participant(h0)["stats"]["validated"] == 1
    # When h2 passes it too: 310 = 104 (executor, with the remainder) + 103 + 103
    ok(net, h2, iid, PASS)
    assert (coins(net, h0), coins(net, h1), coins(net, h2)) == (104, 103, 103)
    assert record(net, iid)["validated_by"] == [h1.address, h2.address]
    # The executor's validated count is per inference, not per validation
    assert net.participant(h0)["stats"]["validated"] == 1
    work_is_owed(net)


# -- votes -----------------------------------------------------------------------------------

def test_failed_validation_opens_a_vote_that_invalidates_and_refunds(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    dev_before = net.balance(DEV)
    iid = infer(net, h0)
    assert net.balance(DEV) == dev_before - COST
    ok(net, h1, iid, PASS)                                  # 155 / 155
    work_before = net.balance(WORK)
    # When h2 fails it: a vote opens with h2's 100 of 500 for "invalidate"
    ok(net, h2, iid, FAIL)
    assert record(net, iid)["status"] == "voting"
    v = vote(net, iid)
    assert v["vote"]["deadline"] == net.height + 10 and v["vote"]["outcome"] == ""
    assert v["tally"] == {"invalidate": 100, "revalidate": 0, "total": 500}
    # The work stays with the workers while the vote runs
    assert (coins(net, h0), coins(net, h1), coins(net, h2)) == (155, 155, 0)
    # When h3 votes invalidate: 200 of 500, not yet half
    ok(net, h3, iid, FAIL, revalidation=True)
    assert record(net, iid)["status"] == "voting"
    # When h4 votes invalidate too: 300 of 500 decides at once
    ok(net, h4, iid, FAIL, revalidation=True)
    assert record(net, iid)["status"] == "invalidated"
    assert vote(net, iid)["vote"]["outcome"] == "invalidated"
    # Then both workers give back their shares and the developer gets the cost back
    assert (coins(net, h0), coins(net, h1)) == (0, 0)
    assert net.balance(DEV) == dev_before
    assert net.balance(WORK) == work_before - COST
    stats = net.participant(h0)
    assert stats["consecutive_invalid"] == 1 and stats["stats"]["invalidated"] == 1
    work_is_owed(net)


def test_revalidation_votes_keep_the_inference_and_a_voter_may_change_its_ballot(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    iid = infer(net, h0)
    ok(net, h1, iid, FAIL)                                  # invalidate 100
    ok(net, h2, iid, FAIL, revalidation=True)               # invalidate 200
    # When h2 changes its mind, its earlier ballot is replaced
    ok(net, h2, iid, PASS, revalidation=True)
    assert vote(net, iid)["tally"] == {"invalidate": 100, "revalidate": 100, "total": 500}
    # The executor may vote on its own inference
    ok(net, h0, iid, PASS, revalidation=True)               # revalidate 200
    assert record(net, iid)["status"] == "voting"
    ok(net, h3, iid, PASS, revalidation=True)               # revalidate 300: decided
    # Then it is validated, the executor keeps all of its work and its run is reset
    assert record(net, iid)["status"] == "validated"
    assert vote(net, iid)["vote"]["outcome"] == "validated"
    assert coins(net, h0) == COST and coins(net, h1) == 0
    p0 = net.participant(h0)
    assert p0["consecutive_invalid"] == 0 and p0["stats"]["validated"] == 1
    # The failing validator is not a worker
    assert record(net, iid)["validated_by"] == []
    work_is_owed(net)


def test_votes_are_resolved_at_their_deadline_by_the_larger_side(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    tie = infer(net, h0)
    lost = infer(net, h0)
    ok(net, h1, tie, FAIL)
    opened = net.height
    ok(net, h2, tie, PASS, revalidation=True)              # 100 : 100
    ok(net, h1, lost, FAIL)
    ok(net, h2, lost, FAIL, revalidation=True)             # 200 : 100
    ok(net, h3, lost, PASS, revalidation=True)
    # Nothing is decided before the deadline
    net.run_to(opened + 9)
    assert record(net, tie)["status"] == "voting"
    # At the end of the deadline block: a tie keeps it valid
    net.run_to(opened + 10)
    assert record(net, tie)["status"] == "validated"
    assert vote(net, tie)["vote"]["resolved_height"] == opened + 10
    net.run_to(opened + 12)
    assert record(net, lost)["status"] == "invalidated"
    assert coins(net, h0) == COST
    work_is_owed(net)


def test_open_votes_hold_the_work_through_settlement(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    ids = {}

    def during(stages):
        # Disputes opened a few blocks before the switch, still open at it
        ids["kept"] = infer(net, h0)
        ids["lost"] = infer(net, h0)
        ok(net, h1, ids["kept"], PASS)                      # 155 / 155
        ok(net, h1, ids["lost"], PASS)                      # 155 / 155
        ok(net, h2, ids["kept"], FAIL)
        ok(net, h2, ids["lost"], FAIL)
        assert (coins(net, h0), coins(net, h1)) == (2 * 155, 2 * 155)
        work_is_owed(net)

    run_next_epoch(net, during)
    # Then at settlement their coins left the workers' balances for a hold
    assert held(net) == 2 * COST
    h0_after, h1_after = coins(net, h0), coins(net, h1)
    dev_before, work_before = net.balance(DEV), net.balance(WORK)
    # A first-round validation is too late now, but epoch 1's members still vote
    assert validate(net, h3, ids["kept"], PASS).code == 906
    ok(net, h0, ids["kept"], PASS, revalidation=True)       # the executor: 100 of 500
    ok(net, h3, ids["kept"], PASS, revalidation=True)
    ok(net, h4, ids["kept"], PASS, revalidation=True)       # 300 of 500
    assert record(net, ids["kept"])["status"] == "validated"
    # The held shares go back to the workers
    assert (coins(net, h0), coins(net, h1)) == (h0_after + 155, h1_after + 155)
    assert held(net) == COST
    ok(net, h3, ids["lost"], FAIL, revalidation=True)
    ok(net, h4, ids["lost"], FAIL, revalidation=True)       # 300 of 500 with h2's ballot
    assert record(net, ids["lost"])["status"] == "invalidated"
    # The held shares refund the developer; the workers' balances are untouched
    assert held(net) == 0
    assert (coins(net, h0), coins(net, h1)) == (h0_after + 155, h1_after + 155)
    assert net.balance(DEV) == dev_before + COST
    assert net.balance(WORK) == work_before - COST


# -- status ----------------------------------------------------------------------------------

def test_five_consecutive_invalidations_make_the_executor_invalid(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    net.ok((h0.key, MsgDepositCollateral(participant=h0.address, amount=1_000)))
    supply = net.query("bank/supply")["amount"]
    for i in range(5):
        iid = infer(net, h0)
        ok(net, h1, iid, FAIL)
        ok(net, h2, iid, FAIL, revalidation=True)
        ok(net, h3, iid, FAIL, revalidation=True)           # 300 of 500
        assert record(net, iid)["status"] == "invalidated"
        status = net.participant(h0)["status"]
        assert status == ("invalid" if i == 4 else "ramping"), (i, status)
    # Then h0 is out of the group and the validator set, and 20% of its collateral is burned
    assert net.participant(h0)["consecutive_invalid"] == 5
    assert net.weights(1)[h0.address] == 0
    assert net.group(1)["group"]["total_weight"] == 400
    net.run()  # the validator update is in the set at once; consensus applies it at h+2
    assert net.validator_powers().get(h0.address, 0) == 0
    assert net.query("collateral/participant", address=h0.address)["active"] == 800
    assert net.query("bank/supply")["amount"] == supply - 200
    # And it can no longer validate in this epoch
    other = infer(net, h1)
    assert validate(net, h0, other, PASS).code == 901


def ballots(net: Net, voter: Host, ids: list[bytes], similarity: int, revalidation: bool):
    """One block in which `voter` sends a validation for each of `ids`."""
    net.ok(*[(voter.key, MsgValidation(validator=voter.address, inference_id=i,
                                       similarity_ppm=similarity, revalidation=revalidation))
             for i in ids])


def test_invalid_status_sticks_and_slashes_once(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    net.ok((h0.key, MsgDepositCollateral(participant=h0.address, amount=1_000)))
    disputed = [infer(net, h0) for _ in range(6)]
    ballots(net, h1, disputed, FAIL, revalidation=False)    # six votes open, 100 of 500 each
    # When five of them are invalidated in one block
    ballots(net, h2, disputed[:5], FAIL, revalidation=True)
    ballots(net, h3, disputed[:5], FAIL, revalidation=True)
    assert [record(net, i)["status"] for i in disputed] == ["invalidated"] * 5 + ["voting"]
    assert net.participant(h0)["status"] == "invalid"
    assert net.group(1)["group"]["total_weight"] == 400
    # Then a sixth invalidation (200 of the 400 left is half) keeps it INVALID and does not
    # slash again
    ok(net, h2, disputed[5], FAIL, revalidation=True)
    assert record(net, disputed[5])["status"] == "invalidated"
    p0 = net.participant(h0)
    assert p0["status"] == "invalid" and p0["consecutive_invalid"] == 6
    assert net.query("collateral/participant", address=h0.address)["active"] == 800


# -- the required list -----------------------------------------------------------------------

def test_pending_list_is_the_selection_rule_over_the_epochs_inferences(net, hosts):
    params = ValidationParams(**net.query("params/validation"))
    late = []

    def during(stages):
        # Completed within inference_validation_cutoff (4) blocks of the epoch's end
        net.run_to(stages["set_new_validators"] - 4)
        late.extend(infer(net, hosts[i]) for i in range(3))

    for i in range(12):
        infer(net, hosts[i % 5])
    done = infer(net, hosts[0])
    ok(net, hosts[1], done, PASS)

    def expected(validator: Host, seed: bytes, cutoff_height: int | None) -> list[str]:
        out = []
        for rec in net.query("inference/epoch", epoch="1"):
            if rec["executor"] == validator.address:
                continue
            if cutoff_height is not None and rec["completed_height"] > cutoff_height:
                continue
            iid = b64(rec["id"])
            if should_validate(seed, iid, executor_reputation=rec["executor_reputation"],
                               traffic_basis=rec["traffic_basis"], validator_power=100,
                               executor_power=rec["executor_power"],
                               total_power=rec["total_power"], params=params):
                out.append(iid.hex())
        return sorted(out)

    # While epoch 1 runs: the pending list is the rule minus what was already validated
    total = 0
    for h in hosts:
        seed = h.seed(1)
        pending = net.query("validation/pending", validator=h.address, seed=seed.hex())
        want = expected(h, seed, None)
        if h is hosts[1]:
            want = [i for i in want if i != done.hex()]
        assert pending == want
        total += len(want)
    # At traffic <= 100 the target is one validator, so p = 100 / 400: some chosen, not all
    assert 0 < total < 13 * 4

    run_next_epoch(net, during)
    # After the epoch ended, inferences of its last `cutoff` blocks are not required
    last = net.group(1)["group"]["last_height"]
    assert all(record(net, i)["completed_height"] > last - 4 for i in late)
    # (the rule alone would have chosen some of them)
    assert any(i.hex() in expected(h, h.seed(1), None) for h in hosts for i in late)
    for h in hosts:
        seed = h.seed(1)
        pending = net.query("validation/pending", validator=h.address, seed=seed.hex(),
                            epoch="1")
        want = expected(h, seed, last - 4)
        if h is hosts[1]:
            want = [i for i in want if i != done.hex()]
        assert pending == want
        assert not {i.hex() for i in late} & set(pending)


# -- rejections ------------------------------------------------------------------------------

def snapshot(net: Net, *ids: bytes) -> tuple:
    """Everything a refused validation could have touched."""
    votes = []
    for iid in ids:
        result = net.app.query("validation/votes", {"id": iid.hex()})
        votes.append(result.value if result.code == 0 else result.code)
    return (net.query("participants/all"), [record(net, i) for i in ids], votes,
            net.balance(WORK), net.balance(DEV), held(net),
            [net.query("validation/pending", validator=h.address, seed=h.seed(1).hex())
             for h in net.hosts])


def test_refused_validations_change_nothing(net, hosts):
    h0, h1, h2, h3, h4 = hosts
    outsider = Host(9)
    net.register(outsider)  # a participant, but not in epoch 1's group
    iid = infer(net, h0)
    ok(net, h1, iid, PASS)
    # A started inference (no finish yet)
    started = request(h1, h2)
    started_id = started.id
    net.ok((h1.key, started.start))
    before = snapshot(net, iid, started_id)
    cases = [
        (outsider, iid, False, 901),            # not a member of the group
        (h0, iid, False, 902),                  # its own inference
        (h2, b"\x01" * 64, False, 903),         # unknown id
        (h3, started_id, False, 904),           # not complete
        (h1, iid, False, 905),                  # already validated it
        (h2, iid, True, 907),                   # revalidation while nothing is disputed
    ]
    for validator, target, revalidation, code in cases:
        r = validate(net, validator, target, FAIL, revalidation)
        assert (r.code, r.codespace) == (code, "validation"), r.log
        assert snapshot(net, iid, started_id) == before, code


def test_too_late_after_the_epoch_settled(net, hosts):
    ids = []
    run_next_epoch(net, lambda stages: ids.append(infer(net, hosts[0])))
    before = snapshot(net, ids[0])
    r = validate(net, hosts[1], ids[0], PASS)
    assert r.code == 906 and "too late" in r.log
    assert snapshot(net, ids[0]) == before
