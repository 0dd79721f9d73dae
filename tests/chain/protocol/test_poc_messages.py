"""Registration, seed commitments, PoC commits and PoC validations: every bad message is refused
with its own code and changes nothing."""

from __future__ import annotations

import base64

import pytest

from chain.app import abci
from chain.crypto import secp256k1
from chain.types.msgs import (
    MlNodeSpec,
    MsgPocCommit,
    MsgPocValidation,
    MsgRegisterParticipant,
    MsgSubmitSeed,
)
from tests.chain.protocol.harness import MODEL, Host, Net

OUTSIDER = secp256k1.PrivateKey(bytes([99]) * 32)


@pytest.fixture
def hosts():
    return [Host(i) for i in range(3)]


@pytest.fixture
def net(tmp_path, hosts):
    n = Net(tmp_path / "state.db", hosts,
            extra_accounts=[(OUTSIDER.address, 10**12)])
    n.register(*hosts)
    yield n
    n.close()


def refused(net, key, msg, code: int) -> str:
    (result,) = net.send((key, msg))
    assert result.code == code, result.log
    return result.log


def register_msg(host: Host, **kw) -> MsgRegisterParticipant:
    fields = dict(participant=host.address, inference_url="http://h.example:9000",
                  validator_key=host.consensus.public_key,
                  ml_nodes=(MlNodeSpec(node_id="n0", models=(MODEL,)),))
    fields.update(kw)
    return MsgRegisterParticipant(**fields)


def test_reregistration_updates_url_keys_and_nodes_and_keeps_history(net, hosts):
    before = net.participant(hosts[0])
    assert before["worker_key"] is None
    warm = secp256k1.PrivateKey(bytes([77]) * 32)
    net.ok((hosts[0].key, register_msg(hosts[0], inference_url="https://new.example",
                                       ml_nodes=(), worker_key=warm.public_key)))
    after = net.participant(hosts[0])
    assert after["inference_url"] == "https://new.example" and after["ml_nodes"] == []
    assert base64.b64decode(after["worker_key"]) == warm.public_key
    assert after["join_height"] == before["join_height"]


def test_registration_refusals(net, hosts):
    # A consensus key of another host
    log = refused(net, OUTSIDER, MsgRegisterParticipant(
        participant=OUTSIDER.address, inference_url="http://x.example",
        validator_key=hosts[1].consensus.public_key), 502)
    assert hosts[1].address in log
    # A model the registry does not have
    log = refused(net, hosts[0].key, register_msg(
        hosts[0], ml_nodes=(MlNodeSpec(node_id="n0", models=("no/such-model",)),)), 503)
    assert "no/such-model" in log
    assert net.participant(hosts[0])["ml_nodes"][0]["models"] == [MODEL]
    assert net.app.query("participants/participant", {"address": OUTSIDER.address}).code == 3


@pytest.mark.parametrize("url", ["ftp://x.example", "http://", "http://u:p@x.example",
                                 "not a url", "http://x.example:99999"])
def test_a_bad_url_does_not_decode(hosts, url):
    with pytest.raises(ValueError):
        register_msg(hosts[0], inference_url=url)


def test_seed_and_commit_windows(net, hosts):
    # Before any PoC: there is no running epoch
    seed = MsgSubmitSeed(participant=hosts[0].address, epoch=1, commitment=bytes(32))
    commit = MsgPocCommit(participant=hosts[0].address, epoch=1, count=5, root=bytes(32))
    assert "no PoC is running" in refused(net, hosts[0].key, seed, 601)
    refused(net, hosts[0].key, commit, 601)
    epoch = net.start_next_poc()
    stages = net.poc()
    # A commit for another epoch
    refused(net, hosts[0].key, MsgPocCommit(participant=hosts[0].address, epoch=epoch + 1,
                                            count=5, root=bytes(32)), 601)
    # A non-participant
    refused(net, OUTSIDER, MsgPocCommit(participant=OUTSIDER.address, epoch=epoch, count=5,
                                        root=bytes(32)), 501)
    net.run_to(stages["commit_deadline"])
    # After the deadline
    log = refused(net, hosts[0].key, commit, 602)
    assert str(stages["commit_deadline"]) in log
    refused(net, hosts[0].key, seed, 602)
    assert net.query("poc/commits", epoch=str(epoch)) == []


def test_poc_validation_refusals(net, hosts):
    epoch = net.start_next_poc()
    stages = net.poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {hosts[0]: 10, hosts[1]: 10})

    def validation(validator, participant, fraud=False):
        return MsgPocValidation(validator=validator.address, participant=participant.address,
                                epoch=epoch, fraud=fraud, checked=5, failed=0)

    # Too early
    refused(net, hosts[1].key, validation(hosts[1], hosts[0]), 602)
    net.run_to(stages["validation_start"] - 1)
    # Not a current validator
    refused(net, OUTSIDER, MsgPocValidation(validator=OUTSIDER.address,
                                            participant=hosts[0].address, epoch=epoch,
                                            fraud=False, checked=1, failed=0), 701)
    # Its own PoC
    refused(net, hosts[0].key, validation(hosts[0], hosts[0]), 702)
    # A host that made no commit
    refused(net, hosts[0].key, validation(hosts[0], hosts[2]), 703)
    assert net.query("poc/validations", epoch=str(epoch), participant=hosts[0].address) == []
    # A later verdict replaces the earlier one
    net.ok((hosts[1].key, validation(hosts[1], hosts[0], fraud=True)))
    net.ok((hosts[1].key, validation(hosts[1], hosts[0], fraud=False)))
    (record,) = net.query("poc/validations", epoch=str(epoch), participant=hosts[0].address)
    assert record["fraud"] is False
    with pytest.raises(ValueError):
        MsgPocValidation(validator=hosts[1].address, participant=hosts[0].address, epoch=epoch,
                         fraud=False, checked=1, failed=2)


def test_last_commit_counts(net, hosts):
    epoch = net.start_next_poc()
    net.commit_seeds(epoch, hosts)
    net.commit_poc(epoch, {hosts[0]: 10})
    net.commit_poc(epoch, {hosts[0]: 25})
    (commit,) = net.query("poc/commits", epoch=str(epoch))
    assert commit["count"] == 25


def test_epoch_info_and_stage_names(net):
    info = net.epoch_info()
    assert info["effective_epoch"] == 0 and info["upcoming_epoch"] is None
    poc = info["poc"]
    assert poc["poc_start"] == 20 and poc["next_poc_start"] == 60
    assert poc["commit_deadline"] == 20 + 8 + 3
    assert poc["set_new_validators"] == 20 + 8 + 3 + 6 + 2
    for height, stage in ((20, "sprint"), (28, "commit_exchange"), (32, "poc_validation"),
                          (38, "set_new_validators"), (40, "inference")):
        assert net.query("epochs/current", at_height=str(height))["stage"] == stage
    assert abci.OK == 0
