"""Gov through the app: proposals to change params, deposits, votes weighted by the voting power
of the validators the voter operates, and the end-of-voting tally (pass, reject, veto, quorum),
with param changes applied on pass and a change that does not fit failing the proposal only."""

from __future__ import annotations

import pytest

from chain.app import abci
from chain.app.auth.state import module_address
from chain.types import MsgExec, MsgGrant, MsgSend
from chain.types.msgs import MsgDeposit, MsgSubmitProposal, MsgVote
from chain.types.msgs.params import ParamChange
from tests.chain.app_builders import ALICE, BOB, CAROL, DAVE, Chain, make_genesis, signed_tx

BALANCE = 1_000_000
GOV = {"min_deposit": 1000, "deposit_period_blocks": 5, "voting_period_blocks": 3}


@pytest.fixture
def chain(tmp_path):
    # Alice, Bob and Carol operate validators of power 50, 30 and 20; Dave operates none.
    genesis = make_genesis(
        balances={k.address: BALANCE for k in (ALICE, BOB, CAROL, DAVE)},
        powers=((ALICE.address, 50), (BOB.address, 30), (CAROL.address, 20)),
        app_params={"gov": GOV},
    )
    c = Chain(tmp_path / "state.db", genesis)
    yield c
    c.close()


def change(module="gov", key="voting_period_blocks", value="10") -> ParamChange:
    return ParamChange(module=module, key=key, value=value)


def ok(chain, *txs) -> abci.FinalizeBlockResult:
    result = chain.run(list(txs))
    for r in result.tx_results:
        assert r.code == abci.OK, r.log
    return result


def propose(chain, *changes, deposit=1000, key=DAVE) -> int:
    msg = MsgSubmitProposal(proposer=key.address, changes=changes or (change(),),
                            initial_deposit=deposit, title="raise the voting period",
                            description="because")
    result = ok(chain, signed_tx(msg, key=key))
    event = next(e for e in result.tx_results[0].events if e.type == "submit_proposal")
    return int(dict((a.key, a.value) for a in event.attributes)["proposal_id"])


def vote(key, proposal_id, option, memo="") -> bytes:
    return signed_tx(MsgVote(voter=key.address, proposal_id=proposal_id, option=option),
                     key=key, memo=memo)


def proposal(chain, proposal_id):
    return chain.query("gov/proposal", id=str(proposal_id))


def finish_voting(chain, proposal_id) -> abci.FinalizeBlockResult:
    """Run empty blocks through the voting end height; the last one's result."""
    end = proposal(chain, proposal_id)["voting_end_height"]
    result = None
    while chain.height < end:
        result = chain.run([])
    return result


def test_a_proposal_that_passes_changes_the_param_and_refunds_deposits(chain):
    # Given Dave's proposal with 400 of the 1000 needed, which waits for deposits,
    pid = propose(chain, change(), change("bank", "send_enabled", "false"), deposit=400)
    p = proposal(chain, pid)
    assert (p["status"], p["total_deposit"], p["deposit_end_height"]) == ("deposit_period", 400, 6)
    # when Bob adds 600 in block 2 its voting period runs from block 2 through block 5,
    ok(chain, signed_tx(MsgDeposit(depositor=BOB.address, proposal_id=pid, amount=600), key=BOB))
    p = proposal(chain, pid)
    assert (p["status"], p["voting_start_height"], p["voting_end_height"]) == (
        "voting_period", 2, 5)
    assert chain.query("bank/module_account", name="gov")["amount"] == 1000
    # and Alice (50) votes yes, Bob (30) no, Carol abstains: yes is 50 of 80 counted, > 1/2.
    ok(chain, vote(ALICE, pid, "yes"), vote(BOB, pid, "no"), vote(CAROL, pid, "abstain"))
    assert chain.query("gov/tally", id=str(pid)) == {
        "yes": 50, "no": 30, "abstain": 20, "no_with_veto": 0, "total_power": 100}
    last = finish_voting(chain, pid)
    # Then at the end of block 5 the proposal passed and both changes are in force,
    p = proposal(chain, pid)
    assert p["status"] == "passed" and chain.height == 5
    assert chain.query("params/gov")["voting_period_blocks"] == 10
    assert chain.query("params/bank")["send_enabled"] is False
    changes = [e for e in last.events if e.type == "param_change"]
    assert [a.value for a in changes[0].attributes] == [str(pid), "gov", "voting_period_blocks",
                                                        "10"]
    # the deposits went back, and transfers are now disabled.
    assert chain.balance(DAVE) == BALANCE and chain.balance(BOB) == BALANCE
    assert chain.query("bank/module_account", name="gov")["amount"] == 0
    send = MsgSend(from_address=ALICE.address, to_address=BOB.address, amount=1)
    assert chain.run([signed_tx(send)]).tx_results[0].code == 102


def test_votes_are_weighted_by_voting_power_not_counted(chain):
    # Given two small validators for and the big one against (2 accounts to 1, 50 to 50),
    pid = propose(chain)
    ok(chain, vote(ALICE, pid, "no"), vote(BOB, pid, "yes"), vote(CAROL, pid, "yes"))
    finish_voting(chain, pid)
    # then yes is not more than half of the power: rejected, deposit refunded.
    p = proposal(chain, pid)
    assert p["status"] == "rejected" and p["result_log"] == "rejected: not enough yes votes"
    assert p["tally"]["yes"] == 50 and p["tally"]["no"] == 50
    assert chain.query("params/gov")["voting_period_blocks"] == 3
    assert chain.balance(DAVE) == BALANCE


def test_a_later_vote_replaces_an_earlier_one(chain):
    pid = propose(chain)
    ok(chain, vote(ALICE, pid, "no"))
    ok(chain, vote(ALICE, pid, "yes", memo="changed my mind"))
    assert chain.query("gov/votes", id=str(pid)) == [{"voter": ALICE.address, "option": "yes"}]
    finish_voting(chain, pid)
    assert proposal(chain, pid)["status"] == "passed"


def test_a_veto_rejects_and_burns_the_deposits(chain):
    pid = propose(chain, deposit=1500)
    supply = chain.query("bank/supply")["amount"]
    # Yes has 50, but no_with_veto holds 50 of the 100 voted, more than 33.4%.
    ok(chain, vote(ALICE, pid, "yes"), vote(BOB, pid, "no_with_veto"),
       vote(CAROL, pid, "no_with_veto"))
    finish_voting(chain, pid)
    p = proposal(chain, pid)
    assert (p["status"], p["result_log"]) == ("rejected", "rejected: vetoed")
    assert chain.query("bank/supply")["amount"] == supply - 1500
    assert chain.balance(DAVE) == BALANCE - 1500
    assert chain.query("bank/invariants")["holds"]


def test_without_quorum_a_proposal_is_rejected_and_deposits_refunded(chain):
    pid = propose(chain)
    ok(chain, vote(CAROL, pid, "yes"))  # 20 of 100 voted, quorum is 33.4%
    finish_voting(chain, pid)
    p = proposal(chain, pid)
    assert (p["status"], p["result_log"]) == ("rejected", "rejected: quorum not reached")
    assert chain.balance(DAVE) == BALANCE


def test_a_passed_change_that_does_not_fit_fails_the_proposal_not_the_chain(chain):
    # Given a proposal setting a valid value and an out-of-range quorum (max 10000 bps),
    pid = propose(chain, change("gov", "min_deposit", "5"), change("gov", "quorum_bps", "20000"))
    ok(chain, vote(ALICE, pid, "yes"), vote(BOB, pid, "yes"))
    finish_voting(chain, pid)
    # then it is FAILED with the reason, neither change applied, and the chain goes on.
    p = proposal(chain, pid)
    assert p["status"] == "failed" and "gov.quorum_bps" in p["result_log"]
    params = chain.query("params/gov")
    assert (params["min_deposit"], params["quorum_bps"]) == (1000, 3340)
    assert chain.balance(DAVE) == BALANCE
    chain.run([])


def test_a_proposal_must_name_existing_params(chain):
    for bad, code in [(change("nomodule", "x"), 401), (change("gov", "nokey"), 402)]:
        msg = MsgSubmitProposal(proposer=DAVE.address, changes=(bad,), initial_deposit=1000,
                                title="t")
        r = chain.run([signed_tx(msg, key=DAVE)]).tx_results[0]
        assert (r.code, r.codespace) == (code, "params")
    assert chain.query("gov/proposals") == [] and chain.balance(DAVE) == BALANCE


def test_a_proposal_short_of_min_deposit_expires_with_its_deposits_refunded(chain):
    pid = propose(chain, deposit=999)
    chain.run_until(6)
    p = proposal(chain, pid)
    assert p["status"] == "expired" and "999 of the 1000" in p["result_log"]
    assert chain.balance(DAVE) == BALANCE
    assert chain.query("gov/proposals", status="expired")[0]["id"] == pid
    late = MsgDeposit(depositor=DAVE.address, proposal_id=pid, amount=5)
    assert chain.run([signed_tx(late, key=DAVE)]).tx_results[0].code == 302


def test_votes_need_power_an_open_proposal_and_an_existing_one(chain):
    waiting = propose(chain, deposit=0)
    voting = propose(chain)
    codes = [r.code for r in chain.run([
        vote(DAVE, voting, "yes"),  # Dave operates no validator
        vote(ALICE, waiting, "yes"),  # still in its deposit period
        vote(ALICE, 99, "yes"),
        signed_tx(MsgDeposit(depositor=DAVE.address, proposal_id=99, amount=1), key=DAVE),
    ]).tx_results]
    assert codes == [304, 303, 301, 301]


def test_a_warm_key_votes_for_its_operator_under_a_grant(chain):
    # Given Alice (50) lets Dave's key send gov votes for her,
    ok(chain, signed_tx(MsgGrant(granter=ALICE.address, grantee=DAVE.address,
                                 msg_types=("gov/MsgVote",), expiration_height=None)))
    pid = propose(chain)
    # when Dave votes yes as Alice,
    ok(chain, signed_tx(MsgExec(grantee=DAVE.address,
                                msgs=(MsgVote(voter=ALICE.address, proposal_id=pid,
                                              option="yes"),)), key=DAVE))
    finish_voting(chain, pid)
    # then her power carried the vote.
    assert proposal(chain, pid)["tally"]["yes"] == 50
    assert proposal(chain, pid)["status"] == "passed"


def test_gov_queries_check_their_parameters(chain):
    assert chain.app.query("gov/proposal", {"id": "x"}).code == 2
    assert chain.app.query("gov/proposal", {"id": "0"}).code == 2
    assert chain.app.query("gov/proposal", {"id": "7"}).code == 3
    assert chain.app.query("gov/proposals", {"status": "weird"}).code == 2
    assert chain.app.query("gov/nothing", {}).code == 1
    assert module_address("gov") == chain.query("bank/module_account", name="gov")["address"]
