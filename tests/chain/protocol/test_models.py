"""The model registry changes only through governance, and an epoch serves the snapshot taken
when its group formed; amounts that overflow never decode."""

from __future__ import annotations

import json

import msgspec

from chain.app import abci
from chain.app.profiles import profile_params
from chain.types import TxBody, encode, sign_tx
from chain.types.msgs import (
    MlNodeSpec,
    MsgDepositCollateral,
    MsgRegisterParticipant,
    MsgSubmitProposal,
    MsgVote,
)
from chain.types.msgs.params import ParamChange
from tests.chain.builders import CHAIN_ID
from tests.chain.protocol.harness import MODEL, Host, Net

GOV = {"min_deposit": 1, "deposit_period_blocks": 5, "voting_period_blocks": 3}
NEW = "acme/new-model-7b"


def test_a_model_added_by_governance_is_served_from_the_next_epoch(tmp_path):
    hosts = [Host(i) for i in range(3)]
    net = Net(tmp_path / "s.db", hosts, params={"gov": GOV})
    net.register(*hosts)
    # A node cannot declare a model the registry does not have
    (r,) = net.send((hosts[0].key, MsgRegisterParticipant(
        participant=hosts[0].address, inference_url="http://h0.example",
        validator_key=hosts[0].consensus.public_key,
        ml_nodes=(MlNodeSpec(node_id="n0", models=(NEW,)),))))
    assert r.code == 503
    # When governance adds it
    models = profile_params("devnet")["models"]["models"] + [
        {"id": NEW, "validation_threshold_ppm": 950_000, "base_per_token_price": 7}]
    change = ParamChange(module="models", key="models", value=json.dumps(models))
    net.ok((hosts[0].key, MsgSubmitProposal(proposer=hosts[0].address, changes=(change,),
                                            initial_deposit=1, title="add a model")))
    net.ok(*[(h.key, MsgVote(voter=h.address, proposal_id=1, option="yes")) for h in hosts])
    net.run_to(net.height + 3)
    assert net.query("gov/proposal", id="1")["status"] == "passed"
    assert [m["id"] for m in net.query("models/all")] == sorted([MODEL, NEW])
    # Then hosts may declare it, and the next epoch's group serves it with its snapshot
    net.register(hosts[0], models=(NEW,))
    net.register(*hosts[1:], models=(MODEL, NEW))
    epoch = net.epoch({h: 100 for h in hosts})
    group = net.group(epoch)
    snapshot = {m["id"]: m for m in group["group"]["models"]}
    assert snapshot[NEW]["validation_threshold_ppm"] == 950_000
    weights = {w["model"]: w["total_weight"] for w in group["group"]["model_weights"]}
    # Host 0 serves only the new model; hosts 1 and 2 put their single node on the first
    # registry model by id that it serves
    first = min(MODEL, NEW)
    assert weights[NEW] == 100 + (200 if first == NEW else 0)
    net.close()


def test_an_invalid_model_list_fails_the_proposal_and_changes_nothing(tmp_path):
    hosts = [Host(i) for i in range(3)]
    net = Net(tmp_path / "s.db", hosts, params={"gov": GOV})
    duplicate = [{"id": MODEL}, {"id": MODEL}]
    change = ParamChange(module="models", key="models", value=json.dumps(duplicate))
    net.ok((hosts[0].key, MsgSubmitProposal(proposer=hosts[0].address, changes=(change,),
                                            initial_deposit=1, title="break the registry")))
    net.ok(*[(h.key, MsgVote(voter=h.address, proposal_id=1, option="yes")) for h in hosts])
    net.run_to(net.height + 3)
    proposal = net.query("gov/proposal", id="1")
    assert proposal["status"] == "failed"
    assert "share an id" in proposal["result_log"]
    assert [m["id"] for m in net.query("models/all")] == [MODEL]
    net.close()


def test_an_amount_beyond_int64_is_refused_before_anything_runs(tmp_path):
    hosts = [Host(0)]
    net = Net(tmp_path / "s.db", hosts)
    deposit = MsgDepositCollateral(participant=hosts[0].address, amount=1)
    tx = sign_tx(TxBody(chain_id=CHAIN_ID, messages=(deposit,), memo="", timeout_height=10),
                 hosts[0].key)
    assert net.app.check_tx(encode(tx)).code == abci.OK
    # The same tx with the amount set past int64 (below the type checks, as an attacker would)
    data = msgspec.to_builtins(tx)
    data["body"]["messages"][0]["amount"] = 2**63
    result = net.app.check_tx(msgspec.msgpack.encode(data))
    assert result.code == abci.ERR_DECODE, result.log
    assert "amount" in result.log
    net.close()
