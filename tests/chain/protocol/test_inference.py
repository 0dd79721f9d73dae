"""Inference records through the state machine: Start and Finish in either order, escrow, payment
in work coins, refunds, expiry, and every refused message (with its code, changing nothing).

Setup: four registered hosts; hosts 0 and 1 serve the devnet model, host 2 serves OTHER, host 3
is registered but commits no PoC (no weight). One epoch is run, so epoch 1 is effective. The
price is pinned (base = min = PRICE, grace period over) so balances are exact numbers.
"""

from __future__ import annotations

import msgspec
import pytest

from chain.app import abci
from chain.app.auth.state import module_address
from chain.crypto import secp256k1
from chain.types.msgs import (
    MlNodeSpec,
    MsgExec,
    MsgGrant,
    MsgRegisterParticipant,
    MsgRevoke,
    MsgSend,
)
from tests.chain.protocol.harness import (
    DEVELOPER,
    GONKA,
    MODEL,
    Host,
    InferenceRequest,
    Net,
    inference_request,
)

OTHER = "gonka/other-model"
UNSERVED = "gonka/unserved-model"
PRICE = 1_000
FUNDS = 1_000 * GONKA
INFERENCE_ACCOUNT = module_address("inference")
WORK_ACCOUNT = module_address("work")


def models(base: int, minimum: int) -> dict:
    spec = {"units_of_compute_per_token": 1, "throughput_per_nonce": 1,
            "validation_threshold_ppm": 900_000, "base_per_token_price": base,
            "min_per_token_price": minimum}
    return {"models": [dict(spec, id=m) for m in (MODEL, OTHER, UNSERVED)]}


def inference_net(path, *, params: dict, developer_funds: int = FUNDS) -> tuple[Net, list]:
    hosts = [Host(i) for i in range(4)]
    net = Net(path, hosts, params=params,
              extra_accounts=[(DEVELOPER.address, developer_funds)])
    net.register(*hosts[:2])
    net.register(hosts[2], models=(OTHER,))
    net.register(hosts[3])
    # Given epoch 1 formed from hosts 0-2 (host 3 commits nothing)
    epoch = net.epoch({hosts[0]: 100, hosts[1]: 100, hosts[2]: 100})
    assert epoch == 1
    return net, hosts


@pytest.fixture
def paid(tmp_path):
    net, hosts = inference_net(
        tmp_path / "state.db",
        params={"inference": {"grace_period_end_epoch": 0}, "models": models(PRICE, PRICE)})
    yield net, hosts
    net.close()


def record(net: Net, req: InferenceRequest) -> dict | None:
    result = net.app.query("inference/inference", {"id": req.id.hex()})
    return msgspec.json.decode(result.value) if result.code == 0 else None


def coin_balance(net: Net, host: Host) -> int:
    return net.participant(host)["coin_balance"]


def stats(net: Net, host: Host) -> dict:
    return net.participant(host)["stats"]


def snapshot(net: Net, req: InferenceRequest, hosts) -> dict:
    """Everything a refused message must leave as it was."""
    return {
        "developer": net.balance(DEVELOPER.address),
        "inference_account": net.balance(INFERENCE_ACCOUNT),
        "work_account": net.balance(WORK_ACCOUNT),
        "record": record(net, req),
        "participants": [net.participant(h) for h in hosts],
        "invariants": net.query("inference/invariants"),
        "completed": net.query("inference/epoch", epoch="1"),
    }


def refused(net: Net, hosts, req: InferenceRequest, key, msg, code: int,
            codespace: str = "inference") -> abci.TxResult:
    before = snapshot(net, req, hosts)
    [result] = net.send((key, msg))
    assert (result.code, result.codespace) == (code, codespace), result.log
    assert snapshot(net, req, hosts) == before
    return result


# -- completion in either order ---------------------------------------------------------------

def test_start_then_finish_escrows_then_pays_the_executor_and_refunds_the_rest(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor, prompt_tokens=100, max_tokens=500,
                            finish_prompt_tokens=120, completion_tokens=200)
    # When the transfer agent records the start
    net.ok((ta.key, req.start))
    # Then (100 + 500) x PRICE is held in escrow by the inference account
    escrow = 600 * PRICE
    assert net.balance(DEVELOPER.address) == FUNDS - escrow
    assert net.balance(INFERENCE_ACCOUNT) == escrow
    rec = record(net, req)
    assert (rec["status"], rec["escrow"], rec["per_token_price"]) == ("started", escrow, PRICE)
    assert net.query("inference/invariants") == {"open_escrow": escrow, "module_balance": escrow,
                                                 "holds": True}
    # When the executor finishes with its own prompt count (120) and 200 completion tokens
    [result] = net.ok((executor.key, req.finish))
    # Then it is paid (120 + 200) x PRICE in work coins and the developer gets the rest back
    cost = 320 * PRICE
    assert net.balance(DEVELOPER.address) == FUNDS - cost
    assert net.balance(INFERENCE_ACCOUNT) == 0
    assert net.balance(WORK_ACCOUNT) == cost
    assert coin_balance(net, executor) == cost
    assert stats(net, executor)["inference_count"] == 1
    assert stats(net, executor)["earned"] == cost
    rec = record(net, req)
    weights = net.weights(1)
    assert rec["status"] == "finished"
    assert (rec["actual_cost"], rec["prompt_tokens"], rec["completion_tokens"]) == (cost, 120, 200)
    assert rec["epoch"] == 1 and rec["completed_height"] == net.height
    assert rec["executor_power"] == weights[executor.address]
    assert rec["total_power"] == weights[hosts[0].address] + weights[hosts[1].address]
    assert rec["traffic_basis"] == 1
    assert [r["id"] for r in net.query("inference/epoch", epoch="1")] == [rec["id"]]
    assert net.query("inference/invariants")["holds"]
    finished = [e for e in result.events if e.type == "inference_finished"]
    assert [dict((a.key, a.value) for a in e.attributes) for e in finished] == [
        {"inference_id": req.id.hex(), "executor": executor.address, "epoch": "1",
         "cost": str(cost), "refund": str(escrow - cost)}]


def test_finish_then_start_completes_at_the_start(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor, prompt_tokens=100, max_tokens=500,
                            finish_prompt_tokens=120, completion_tokens=200)
    # When the executor's finish arrives first
    net.ok((executor.key, req.finish))
    # Then nothing is paid yet and the record waits for its start
    assert net.balance(DEVELOPER.address) == FUNDS
    assert coin_balance(net, executor) == 0
    rec = record(net, req)
    assert (rec["status"], rec["escrow"], rec["start_height"]) == ("started", 0, 0)
    # When the start arrives
    net.ok((ta.key, req.start))
    # Then the escrow is taken and settled at once: cost to work coins, the rest refunded
    cost = 320 * PRICE
    assert net.balance(DEVELOPER.address) == FUNDS - cost
    assert net.balance(INFERENCE_ACCOUNT) == 0
    assert net.balance(WORK_ACCOUNT) == cost
    assert coin_balance(net, executor) == cost
    assert stats(net, executor)["inference_count"] == 1
    rec = record(net, req)
    assert (rec["status"], rec["escrow"], rec["actual_cost"]) == ("finished", 600 * PRICE, cost)
    assert rec["prompt_tokens"] == 120


def test_the_cost_is_capped_at_the_escrow(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    # Given a request whose output (1000 tokens) exceeds the max_tokens it paid for (500)
    req = inference_request(ta, executor, prompt_tokens=100, max_tokens=500,
                            completion_tokens=1_000)
    # When both messages arrive in one block
    net.ok((ta.key, req.start), (executor.key, req.finish))
    # Then the executor gets exactly the escrow and nothing is refunded
    escrow = 600 * PRICE
    assert record(net, req)["actual_cost"] == escrow
    assert coin_balance(net, executor) == escrow
    assert net.balance(DEVELOPER.address) == FUNDS - escrow


def test_a_warm_key_granted_the_start_can_sign_and_send_it(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    warm = secp256k1.PrivateKey(bytes([77]) * 32)
    # Given the transfer agent granted a warm key inference/MsgStartInference
    net.ok((ta.key, MsgGrant(granter=ta.address, grantee=warm.address,
                             msg_types=("inference/MsgStartInference",),
                             expiration_height=None)))
    # When the warm key signs the transfer and sends the start through MsgExec
    req = inference_request(ta, executor, ta_key=warm)
    net.ok((warm, MsgExec(grantee=warm.address, msgs=(req.start,))))
    # Then it is accepted
    assert record(net, req)["status"] == "started"
    assert net.balance(INFERENCE_ACCOUNT) == 600 * PRICE


def test_a_warm_key_that_never_signed_a_tx_counts_through_the_published_worker_key(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    warm = secp256k1.PrivateKey(bytes([78]) * 32)
    # Given a warm key granted the start, but which never signed a tx (the chain has no key
    # for it), so the transfer agent's own key sends the start
    net.ok((ta.key, MsgGrant(granter=ta.address, grantee=warm.address,
                             msg_types=("inference/MsgStartInference",),
                             expiration_height=None)))
    req = inference_request(ta, executor, ta_key=warm)
    (refused,) = net.send((ta.key, req.start))
    assert refused.code == 802
    # When the transfer agent publishes it as its worker key
    participant = net.participant(ta)
    net.ok((ta.key, MsgRegisterParticipant(
        participant=ta.address, inference_url=participant["inference_url"],
        validator_key=ta.consensus.public_key, worker_key=warm.public_key,
        ml_nodes=tuple(MlNodeSpec(node_id=n["node_id"], models=tuple(n["models"]))
                       for n in participant["ml_nodes"]))))
    # Then its transfer signature counts, through the grant
    net.ok((ta.key, req.start))
    assert record(net, req)["status"] == "started"
    # And a published key without a grant counts for nothing
    net.ok((ta.key, MsgRevoke(granter=ta.address, grantee=warm.address,
                              msg_types=("inference/MsgStartInference",))))
    other = inference_request(ta, executor, n=5, ta_key=warm)
    (refused,) = net.send((ta.key, other.start))
    assert refused.code == 802


def test_an_inference_completed_after_an_epoch_switch_belongs_to_the_new_epoch(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    # Given a start in epoch 1, just after the next PoC began
    net.start_next_poc()
    req = inference_request(ta, executor)
    net.ok((ta.key, req.start))
    # When epoch 2 becomes effective before the finish arrives
    assert net.epoch({h: 100 for h in hosts[:3]}) == 2
    net.ok((executor.key, req.finish))
    # Then the inference is counted in epoch 2 (the effective epoch at completion)
    rec = record(net, req)
    assert (rec["status"], rec["epoch"]) == ("finished", 2)
    assert net.query("inference/epoch", epoch="1") == []
    assert [r["id"] for r in net.query("inference/epoch", epoch="2")] == [rec["id"]]
    assert net.group(2)["group"]["number_of_requests"] == 1


def test_coins_cannot_be_sent_to_the_escrow_account(paid):
    net, hosts = paid
    # The inference account is a module account from genesis: it holds escrow only
    [result] = net.send((hosts[0].key, MsgSend(from_address=hosts[0].address,
                                               to_address=INFERENCE_ACCOUNT, amount=5)))
    assert (result.code, result.codespace) == (103, "bank")
    assert net.query("inference/invariants")["holds"]


# -- expiry -----------------------------------------------------------------------------------

def test_an_unfinished_inference_expires_with_a_full_refund_and_a_missed_request(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor)
    # Given a start at height s and no finish
    net.ok((ta.key, req.start))
    start = net.height
    deadline = record(net, req)["expires_at"]
    assert deadline == start + 20
    # When the deadline block is committed
    net.run_to(deadline - 1)
    assert record(net, req)["status"] == "started"
    net.run_to(deadline)
    # Then the record is expired, the developer refunded in full, the executor missed a request
    rec = record(net, req)
    assert (rec["status"], rec["actual_cost"]) == ("expired", 0)
    assert net.balance(DEVELOPER.address) == FUNDS
    assert net.balance(INFERENCE_ACCOUNT) == 0
    assert stats(net, executor)["missed_requests"] == 1
    assert coin_balance(net, executor) == 0
    assert net.query("inference/invariants")["holds"]
    # And a finish that comes late is refused
    refused(net, hosts, req, executor.key, req.finish, 807)
    refused(net, hosts, req, ta.key, req.start, 807)


def test_a_finish_without_start_expires_without_a_missed_request(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor)
    net.ok((executor.key, req.finish))
    net.run_to(record(net, req)["expires_at"])
    assert record(net, req)["status"] == "expired"
    assert stats(net, executor)["missed_requests"] == 0
    assert net.balance(DEVELOPER.address) == FUNDS


# -- refused messages -------------------------------------------------------------------------

def test_a_bad_developer_signature_is_refused(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor)
    # The id signed over another transfer agent's address is not a signature of this request
    other = inference_request(hosts[2], executor)
    bad = msgspec.structs.replace(req.start, inference_id=other.id)
    refused(net, hosts, InferenceRequest(bad, req.finish), ta.key, bad, 801)
    bad = msgspec.structs.replace(req.finish, inference_id=other.id)
    refused(net, hosts, InferenceRequest(bad, req.finish), executor.key, bad, 801)


def test_a_transfer_signature_not_from_the_transfer_agent_is_refused(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    # Signed by a key that has no grant from the TA
    req = inference_request(ta, executor, ta_key=hosts[2].key)
    refused(net, hosts, req, ta.key, req.start, 802)
    refused(net, hosts, req, executor.key, req.finish, 802)


def test_an_executor_signature_not_from_the_executor_is_refused(paid):
    net, hosts = paid
    req = inference_request(hosts[0], hosts[1], executor_key=hosts[0].key)
    refused(net, hosts, req, hosts[1].key, req.finish, 803)


def test_an_executor_outside_the_models_sub_group_is_refused(paid):
    net, hosts = paid
    ta = hosts[0]
    # Host 2 serves OTHER, not MODEL; host 3 has no weight in epoch 1
    for executor in (hosts[2], hosts[3]):
        req = inference_request(ta, executor)
        refused(net, hosts, req, ta.key, req.start, 805)
        refused(net, hosts, req, executor.key, req.finish, 805)


def test_a_model_not_served_this_epoch_is_refused(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    for model in (UNSERVED, "nobody/knows-this"):
        req = inference_request(ta, executor, model=model)
        refused(net, hosts, req, ta.key, req.start, 804)


def test_a_transfer_agent_or_executor_that_is_not_a_participant_is_refused(paid):
    net, hosts = paid
    stranger = Host(9)
    req = inference_request(stranger, hosts[1])
    refused(net, hosts, req, stranger.key, req.start, 501, "participants")
    req = inference_request(hosts[0], stranger)
    refused(net, hosts, req, hosts[0].key, req.start, 501, "participants")


def test_the_same_message_twice_is_refused(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor)
    net.ok((ta.key, req.start))
    refused(net, hosts, req, ta.key, req.start, 806)
    net.ok((executor.key, req.finish))
    refused(net, hosts, req, executor.key, req.finish, 806)
    refused(net, hosts, req, ta.key, req.start, 806)


def test_a_second_message_that_disagrees_with_the_first_is_refused(paid):
    net, hosts = paid
    ta, executor = hosts[0], hosts[1]
    req = inference_request(ta, executor)
    net.ok((ta.key, req.start))
    # The same developer request, but routed (and signed by the TA) to host 0 as executor
    other = inference_request(ta, hosts[0])
    result = refused(net, hosts, req, hosts[0].key, other.finish, 808)
    assert "executor" in result.log


def test_a_developer_who_cannot_pay_the_escrow_is_refused(tmp_path):
    net, hosts = inference_net(
        tmp_path / "state.db", developer_funds=600 * PRICE - 1,
        params={"inference": {"grace_period_end_epoch": 0}, "models": models(PRICE, PRICE)})
    try:
        req = inference_request(hosts[0], hosts[1], prompt_tokens=100, max_tokens=500)
        refused(net, hosts, req, hosts[0].key, req.start, 809)
        # And a finish that came first does not change that: the start still has to escrow
        net.ok((hosts[1].key, req.finish))
        refused(net, hosts, req, hosts[0].key, req.start, 809)
    finally:
        net.close()


def test_queries_refuse_bad_parameters(paid):
    net, _ = paid
    assert net.app.query("inference/inference", {"id": "zz"}).code == 2
    assert net.app.query("inference/inference", {"id": "00" * 64}).code == 3
    assert net.app.query("inference/epoch", {}).code == 2
    # Prices of the models the effective epoch serves, by id: the whole-ngonka price charged
    # and the precise one (millionths of a ngonka) it is the floor of
    assert net.query("inference/prices") == [
        {"model": OTHER, "price": PRICE, "precise_price": PRICE * 10**6},
        {"model": MODEL, "price": PRICE, "precise_price": PRICE * 10**6}]
