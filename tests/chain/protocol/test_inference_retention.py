"""Bounded protocol state: the request time window (a first message must carry a request time
within max_request_age_s before / max_request_advance_s after the block time), the seen index
that refuses replays of pruned requests, and the pruning of epoch N-2's records, validations
and resolved votes at the switch to epoch N (a vote still open keeps its record until it
resolves). Every refusal has its code and changes nothing; the money invariants hold.

Setup: three hosts of weight 100 (total 300) serving the devnet model, in effective epoch 1
(devnet epochs: switches at the ends of blocks 39, 79, 119, ...); block h has time T0 + h s. The
price is pinned at the devnet base (10 ngonka per token).
"""

from __future__ import annotations

import msgspec
import pytest

from chain.app.auth.state import module_address
from chain.app.params.state import InvalidGenesisParams, apply_change
from chain.types.msgs import MsgValidation
from chain.types.msgs.params import ParamChange
from tests.chain.builders import T0
from tests.chain.protocol.harness import (
    DEVELOPER,
    GONKA,
    SECOND,
    CheckedNet,
    Host,
    InferenceRequest,
    Net,
    inference_request,
)

DEV_FUNDS = 1_000 * GONKA
WORK = module_address("work")
INFERENCE_ACCOUNT = module_address("inference")
PASS, FAIL = 950_000, 100_000   # the devnet model's threshold is 900_000
PINNED = {"grace_period_end_epoch": 0, "stability_low_bps": 0, "stability_high_bps": 10_000}


def make_net(path, *, inference: dict | None = None, validation: dict | None = None,
             cls: type[Net] = Net) -> Net:
    hosts = [Host(i) for i in range(3)]
    net = cls(path, hosts, extra_accounts=[(DEVELOPER.address, DEV_FUNDS)],
              params={"inference": {**PINNED, **(inference or {})},
                      "validation": validation or {}})
    net.register(*hosts)
    assert net.epoch({h: 100 for h in hosts}) == 1
    return net


@pytest.fixture
def net(tmp_path):
    n = make_net(tmp_path / "state.db")
    yield n
    n.close()


class Counter:
    n = 0


def request(net: Net, ta: Host, executor: Host, *, ts: int | None = None) -> InferenceRequest:
    """A new request of DEVELOPER, its request time `ts` (default: the next block's time)."""
    Counter.n += 1
    return inference_request(ta, executor, n=Counter.n, prompt_tokens=10, max_tokens=50,
                             completion_tokens=21,
                             timestamp_ns=net.now_ns() if ts is None else ts)


def infer(net: Net, executor: Host, ta: Host) -> InferenceRequest:
    req = request(net, ta, executor)
    net.ok((ta.key, req.start), (executor.key, req.finish))
    return req


def lookup(net: Net, path: str, inference_id: bytes) -> tuple[int, dict | None]:
    """(code, value) of a query by inference id: 3 once the state is gone."""
    r = net.app.query(path, {"id": inference_id.hex()})
    return r.code, (msgspec.json.decode(r.value) if r.code == 0 else None)


def status(net: Net, req: InferenceRequest) -> str | None:
    code, rec = lookup(net, "inference/inference", req.id)
    assert code in (0, 3)
    return rec["status"] if rec else None


def validate(net: Net, validator: Host, inference_id: bytes, similarity: int,
             revalidation: bool = False) -> None:
    net.ok((validator.key, MsgValidation(validator=validator.address, inference_id=inference_id,
                                         similarity_ppm=similarity, revalidation=revalidation)))


def snapshot(net: Net, req: InferenceRequest) -> dict:
    """What a refused message must leave as it was."""
    return {"developer": net.balance(DEVELOPER.address),
            "escrow": net.balance(INFERENCE_ACCOUNT), "work": net.balance(WORK),
            "record": lookup(net, "inference/inference", req.id),
            "participants": net.query("participants/all"),
            "invariants": net.query("inference/invariants")}


def refused(net: Net, key, msg, code: int) -> str:
    req = InferenceRequest(msg, msg)
    before = snapshot(net, req)
    [result] = net.send((key, msg))
    assert (result.code, result.codespace) == (code, "inference"), result.log
    assert snapshot(net, req) == before
    return result.log


def work_is_accounted(net: Net) -> None:
    """work account == hosts' coin balances + coins on hold + settled, unclaimed work."""
    owed = sum(p["coin_balance"] for p in net.query("participants/all"))
    held = net.query("validation/held")["total"]
    unclaimed = 0
    for h in net.hosts:
        r = net.app.query("rewards/settlement", {"address": h.address})
        if r.code == 0:
            unclaimed += msgspec.json.decode(r.value)["work"]
    assert net.balance(WORK) == owed + held + unclaimed
    assert net.query("inference/invariants")["holds"]


def next_epoch(net: Net, during=None) -> list:
    """Run a whole PoC (every host 100) to the next switch, calling `during()` a few blocks
    before it; the events of the switch block."""
    hosts = net.hosts
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {h: 100 for h in hosts})
    net.run_to(stages["validation_start"] - 1)
    net.validate_poc(epoch, {(v, p): False for v in hosts for p in hosts if v is not p})
    if during is not None:
        during()
    net.run_to(stages["set_new_validators"] - 1)
    events = list(net.run().events)
    assert net.effective() == epoch
    return events


def run_past_window(net: Net, ts: int, age_s: int = 300) -> None:
    """Commit blocks until the last one's time (T0 + height s) is past ts + age_s: the begin
    block of that block forgot the id."""
    net.run_to((ts + age_s * SECOND - T0) // SECOND + 1)


def event(events, type_: str) -> dict[str, str]:
    [found] = [dict((a.key, a.value) for a in e.attributes) for e in events if e.type == type_]
    return found


# -- the request time window -----------------------------------------------------------------

def test_a_first_message_outside_the_window_is_refused_and_changes_nothing(net):
    h0, h1, _ = net.hosts
    # Given the default window: 300 s back, 60 s ahead of the block time
    # When a Start's request time is 300 s + 1 ns before the block time: 810, naming both times
    old = request(net, h1, h0, ts=net.now_ns() - 300 * SECOND - 1)
    log = refused(net, h1.key, old.start, 810)
    assert str(old.start.request_timestamp_ns) in log and str(net.now_ns() - SECOND) in log
    # And the same holds for a Finish that comes first
    old = request(net, h1, h0, ts=net.now_ns() - 300 * SECOND - 1)
    refused(net, h0.key, old.finish, 810)
    # When the request time is 60 s + 1 ns after the block time: 811, naming both times
    future = request(net, h1, h0, ts=net.now_ns() + 60 * SECOND + 1)
    log = refused(net, h1.key, future.start, 811)
    assert str(future.start.request_timestamp_ns) in log and str(net.now_ns() - SECOND) in log
    future = request(net, h1, h0, ts=net.now_ns() + 60 * SECOND + 1)
    refused(net, h0.key, future.finish, 811)
    # Then the window's edges themselves are accepted
    for ts in (net.now_ns() - 300 * SECOND, net.now_ns() + 60 * SECOND):
        edge = request(net, h1, h0, ts=ts)
        net.ok((h1.key, edge.start))
        net.ok((h0.key, edge.finish))
        assert status(net, edge) == "finished"
    work_is_accounted(net)


def test_the_second_message_is_not_held_to_the_window(net):
    h0, h1, _ = net.hosts
    # Given a Start whose request time is 295 s old when it arrives
    req = request(net, h1, h0, ts=net.now_ns() - 295 * SECOND)
    net.ok((h1.key, req.start))
    # When the Finish comes 10 blocks (10 s) later, the request time outside the window
    net.run_to(net.height + 10)
    net.ok((h0.key, req.finish))
    # Then it completes: only the first message opens the window
    assert status(net, req) == "finished"
    work_is_accounted(net)


def test_an_expired_record_answers_807_until_its_id_leaves_the_window(net):
    h0, h1, _ = net.hosts
    funds = net.balance(DEVELOPER.address)
    # Given a Start with a fresh request time and no Finish
    req = request(net, h1, h0)
    ts = req.start.request_timestamp_ns
    net.ok((h1.key, req.start))
    # When it expires (20 blocks), it is kept and a late Finish is refused as expired
    net.run_to(net.height + 20)
    assert status(net, req) == "expired"
    assert net.balance(DEVELOPER.address) == funds
    refused(net, h0.key, req.finish, 807)
    # When its request time leaves the window (block time > ts + 300 s)
    run_past_window(net, ts)
    # Then the record is gone and a late Finish is too old
    assert status(net, req) is None
    refused(net, h0.key, req.finish, 810)
    assert net.balance(DEVELOPER.address) == funds
    work_is_accounted(net)


def test_a_record_expiring_after_its_id_left_the_window_is_deleted_at_once(net):
    h0, h1, _ = net.hosts
    funds = net.balance(DEVELOPER.address)
    # Given a Start whose request time is 295 s old, and no Finish
    req = request(net, h1, h0, ts=net.now_ns() - 295 * SECOND)
    net.ok((h1.key, req.start))
    assert net.balance(DEVELOPER.address) < funds
    # When it expires 20 blocks later (its id already forgotten)
    net.run_to(net.height + 20)
    # Then the developer is refunded and the record is not kept
    assert net.balance(DEVELOPER.address) == funds
    assert status(net, req) is None
    assert net.query("inference/invariants")["open_escrow"] == 0
    # And a late Finish is refused as too old
    refused(net, h0.key, req.finish, 810)
    work_is_accounted(net)


def test_the_window_must_be_at_least_a_second(tmp_path):
    for key in ("max_request_age_s", "max_request_advance_s"):
        with pytest.raises(InvalidGenesisParams, match=key):
            Net(tmp_path / f"{key}.db", [Host(0)], params={"inference": {key: 0}})


# -- replays of pruned requests ------------------------------------------------------------

def test_a_replay_after_pruning_is_a_duplicate_then_too_old(net):
    h0, h1, _ = net.hosts
    # Given a request completed in epoch 1
    req = infer(net, h0, h1)
    ts = req.start.request_timestamp_ns
    # When epochs 2 and 3 begin (the switch to 3 prunes epoch 1)
    next_epoch(net)
    next_epoch(net)
    assert status(net, req) is None
    # Then a replay of either message is a duplicate while its id is remembered
    assert net.now_ns() - ts < 300 * SECOND
    log = refused(net, h1.key, req.start, 806)
    assert "pruned" in log
    refused(net, h0.key, req.finish, 806)
    # And once the request time has left the window, it is too old
    run_past_window(net, ts)
    refused(net, h1.key, req.start, 810)
    refused(net, h0.key, req.finish, 810)
    work_is_accounted(net)


def test_raising_the_age_does_not_reopen_forgotten_ids(tmp_path):
    net = make_net(tmp_path / "state.db", inference={"max_request_age_s": 30},
                   cls=CheckedNet)
    try:
        h0, h1, _ = net.hosts
        # Given a request completed in epoch 1, its record pruned (switch to 3) and its id
        # forgotten (30 s window)
        req = infer(net, h0, h1)
        next_epoch(net)
        next_epoch(net)
        assert status(net, req) is None
        # When governance raises the age to a day, which would cover the request time again
        net.poke(lambda ctx: apply_change(ctx.store, ParamChange(
            module="inference", key="max_request_age_s", value="86400")))
        assert net.query("params/inference")["max_request_age_s"] == 86400
        # Then a replay is still too old: forgotten ids stay out of the window
        refused(net, h1.key, req.start, 810)
        # While a new request older than the old window, but newer than every forgotten id,
        # is accepted
        fresh = request(net, h1, h0, ts=net.now_ns() - 60 * SECOND)
        net.ok((h1.key, fresh.start), (h0.key, fresh.finish))
        assert status(net, fresh) == "finished"
    finally:
        net.close()


# -- pruning by epoch ------------------------------------------------------------------------

def test_the_switch_to_epoch_n_prunes_epoch_n_minus_2_but_not_open_votes(tmp_path):
    # Votes last 200 blocks unless decided, so one can stay open across two switches
    net = make_net(tmp_path / "state.db", validation={"vote_period_blocks": 200})
    try:
        h0, h1, h2 = net.hosts
        # Given in epoch 1: a finished, a validated, a voting, an invalidated and a
        # revalidated inference, all executed by h0 and validated by h1
        finished, validated, voting, invalidated, revalidated = (infer(net, h0, h2)
                                                                 for _ in range(5))
        validate(net, h1, validated.id, PASS)
        for req in (voting, invalidated, revalidated):
            validate(net, h1, req.id, FAIL)                      # vote opens: 100 of 300
        validate(net, h2, invalidated.id, FAIL, revalidation=True)   # 200 of 300: invalidated
        validate(net, h2, revalidated.id, PASS, revalidation=True)
        validate(net, h0, revalidated.id, PASS, revalidation=True)   # 200 of 300: validated
        epoch1 = (finished, validated, voting, invalidated, revalidated)
        assert [status(net, r) for r in epoch1] == [
            "finished", "validated", "voting", "invalidated", "validated"]

        # When epoch 2 begins: nothing is pruned yet (epoch 0 has nothing)
        events = next_epoch(net)
        assert event(events, "inference_pruned") == {"epoch": "0", "records": "0",
                                                      "kept_voting": "0"}
        assert [status(net, r) for r in epoch1] == [
            "finished", "validated", "voting", "invalidated", "validated"]
        assert net.query("validation/held")["total"] > 0        # the open vote's work held
        # And in epoch 2: a validated and an invalidated inference
        validated2, invalidated2 = infer(net, h1, h2), infer(net, h1, h2)
        validate(net, h0, validated2.id, PASS)
        validate(net, h0, invalidated2.id, FAIL)
        validate(net, h2, invalidated2.id, FAIL, revalidation=True)
        work_is_accounted(net)

        # When epoch 3 begins
        events = next_epoch(net)
        # Then epoch 1's records, validations and resolved votes are pruned, the voting one kept
        assert event(events, "validation_pruned") == {"epoch": "1", "validations": "4",
                                                       "votes": "2"}
        assert event(events, "inference_pruned") == {"epoch": "1", "records": "4",
                                                      "kept_voting": "1"}
        for req in (finished, validated, invalidated, revalidated):
            assert lookup(net, "inference/inference", req.id) == (3, None)
        for req in (invalidated, revalidated):
            assert lookup(net, "validation/votes", req.id) == (3, None)
        assert status(net, voting) == "voting"
        assert lookup(net, "validation/votes", voting.id)[1]["vote"]["outcome"] == ""
        assert [r["id"] for r in net.query("inference/epoch", epoch="1")] == [
            lookup(net, "inference/inference", voting.id)[1]["id"]]
        # And epoch 2's remain
        assert [status(net, r) for r in (validated2, invalidated2)] == ["validated",
                                                                       "invalidated"]
        assert lookup(net, "validation/votes", invalidated2.id)[1]["vote"]["outcome"] == (
            "invalidated")
        assert len(net.query("inference/epoch", epoch="2")) == 2
        work_is_accounted(net)

        # When the open vote of epoch 1 is decided (h2 joins h1: 200 of 300 invalidate)
        developer = net.balance(DEVELOPER.address)
        cost = lookup(net, "inference/inference", voting.id)[1]["actual_cost"]
        validate(net, h2, voting.id, FAIL, revalidation=True)
        # Then its held coins go back to the developer and the record and vote are pruned
        assert net.balance(DEVELOPER.address) == developer + cost
        assert net.query("validation/held") == {"total": 0, "holds": []}
        assert lookup(net, "inference/inference", voting.id) == (3, None)
        assert lookup(net, "validation/votes", voting.id) == (3, None)
        assert net.query("inference/epoch", epoch="1") == []
        work_is_accounted(net)
    finally:
        net.close()


def test_pruned_inferences_can_no_longer_be_validated(net):
    h0, h1, h2 = net.hosts
    req = infer(net, h0, h1)
    next_epoch(net)
    next_epoch(net)
    # A late revalidation of a pruned inference finds nothing (validation 903)
    [r] = net.send((h2.key, MsgValidation(validator=h2.address, inference_id=req.id,
                                          similarity_ppm=PASS, revalidation=True)))
    assert (r.code, r.codespace) == (903, "validation"), r.log
