"""Acceptance scenarios: disputes and reputation (gonka-testermint.md section 5, items 26-27).
Three participants; participant 2 is a dishonest validator: its ML node's replays follow a
different model (a fixed answer), so it fails honest work. The validation params make both
other hosts re-execute every inference; epochs are short enough to see the next one."""

from __future__ import annotations

import pytest

from testermint_py.mock_mlnode import MockScript
from testermint_py.network import MODEL, Network, ParticipantSpec
from tests.scenarios.conftest import EVERYONE_VALIDATES, running_network

pytestmark = pytest.mark.slow

LIAR = 2


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    honest = MockScript(weight=150, weight_per_batch=150)
    liar = MockScript(weight=150, weight_per_batch=150,
                      responses={MODEL: "Every answer of mine disagrees with yours."})
    with running_network(tmp_path_factory.mktemp("disputes"),
                         specs=[ParticipantSpec(mock=honest), ParticipantSpec(mock=honest),
                                ParticipantSpec(mock=liar)],
                         params={"validation": EVERYONE_VALIDATES,
                                 "epochs": {"epoch_length": 40, "first_poc_start": 20}}
                         ) as network:
        yield network


async def executed_by_honest_hosts(net: Network, n: int) -> list[str]:
    honest = {net.participants[0].account, net.participants[1].account}
    ids: list[str] = []
    async with net.developer_client(0) as http:
        for k in range(100):
            r = await http.post(f"{net.participants[0].public_url}/v1/chat/completions",
                                json={"model": MODEL, "max_tokens": 8, "messages": [
                                    {"role": "user", "content": f"dispute {k}"}]})
            assert r.status_code == 200, r.text
            if r.headers["x-executor-address"] in honest:
                ids.append(r.json()["id"])
                if len(ids) == n:
                    return ids
    raise AssertionError("the honest hosts executed too few requests")


async def test_a_dishonest_validator_cannot_invalidate_honest_work(net):
    # When honest hosts execute inferences that the liar fails (opening votes),
    ids = await executed_by_honest_hosts(net, 3)
    opened: set[str] = set()

    async def decided() -> dict | None:
        records = {}
        for inference_id in ids:
            r = await net._http("GET", f"{net.participants[0].public_url}/v1/chat/completions/"
                                f"{inference_id}")
            if r.status_code != 200:
                return None                                  # not on chain yet
            record = r.json()
            if record["status"] == "voting":
                opened.add(inference_id)
            records[inference_id] = record
        done = all(r["status"] in ("validated", "invalidated") for r in records.values())
        return records if done else None
    records = await net.each_block(decided, what="the votes on honest work")
    # then the votes were opened (the liar did fail them) and the honest majority's
    # revalidations ended each one validated.
    assert opened, "the dishonest validator opened no vote"
    assert {r["status"] for r in records.values()} == {"validated"}


async def test_reputation_grows_with_each_settled_epoch(net):
    # Given epoch 1's group (reputation 0 for every new host),
    first = await net.query("epochs/group", epoch="1")
    before = {m["address"]: m["reputation"] for m in first["members"]}
    assert set(before.values()) == {0}
    # when epoch 1 has been settled (at the switch to epoch 2) and the next group forms (a
    # group's reputations are fixed when it forms: epoch 2's formed before that settlement),
    await net.wait_stage(3, "inference")
    third = await net.query("epochs/group", epoch="3")
    after = {m["address"]: m["reputation"] for m in third["members"]}
    # then every honest host that served its epoch has a higher reputation.
    for p in net.participants[:2]:
        assert after[p.account] > before[p.account], (after, before)
