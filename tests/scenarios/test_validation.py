"""Acceptance scenarios: validation and reputation (gonka-testermint.md section 5, items 25-27,
and the harness issue's "a host that tampers with outputs: caught, INVALIDATED"). Three
participants; participant 2's ML node emits the second most likely token at every position
while claiming honest-looking logprobs; the validation params make both other hosts re-execute
every inference."""

from __future__ import annotations

import pytest

from testermint_py.mock_mlnode import MockScript
from testermint_py.network import MODEL, Network, ParticipantSpec
from tests.scenarios.conftest import EVERYONE_VALIDATES, running_network

pytestmark = pytest.mark.slow

CHEAT = 2


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    honest = MockScript(weight=150, weight_per_batch=150)
    specs = [ParticipantSpec(mock=honest), ParticipantSpec(mock=honest),
             ParticipantSpec(mock=MockScript(weight=150, weight_per_batch=150,
                                             tamper="tokens"))]
    with running_network(tmp_path_factory.mktemp("validation"), specs=specs,
                         params={"inference": {"grace_per_token_price": 10},
                                 "validation": EVERYONE_VALIDATES}) as network:
        yield network


async def final_status(net: Network, inference_id: str) -> dict:
    """The record once validation has decided (validated or invalidated)."""
    async def decided() -> dict | None:
        r = await net._http("GET", f"{net.participants[0].public_url}/v1/chat/completions/"
                            f"{inference_id}")
        return r.json() if r.json().get("status") in ("validated", "invalidated") else None
    return await net.each_block(decided, what=f"validation of {inference_id[:16]}")


async def served_by(net: Network, want: set[str], count: int,
                    sent: list[str] | None = None) -> list[tuple[str, str]]:
    """Send requests through participant 0 until `count` have executors in `want`:
    [(inference id, executor)]; every id sent is appended to `sent`."""
    got: list[tuple[str, str]] = []
    async with net.developer_client(0) as http:
        for k in range(200):
            r = await http.post(f"{net.participants[0].public_url}/v1/chat/completions",
                                json={"model": MODEL, "max_tokens": 8, "messages": [
                                    {"role": "user", "content": f"question {k}"}]})
            assert r.status_code == 200, r.text
            if sent is not None:
                sent.append(r.json()["id"])
            executor = r.headers["x-executor-address"]
            if executor in want:
                got.append((r.json()["id"], executor))
                if len(got) == count:
                    return got
    raise AssertionError(f"no executor in {want} after 200 requests")


async def test_a_tampering_executor_is_caught_and_its_inference_invalidated(net):
    cheat = net.participants[CHEAT].account
    dev = net.developers[0].address
    before = await net.balance(dev)
    # When the cheating host executes an inference (honest hosts may execute some first),
    sent: list[str] = []
    [(inference_id, _)] = await served_by(net, {cheat}, 1, sent)
    # then another host's validation worker catches it and the vote invalidates it,
    records = {i: await final_status(net, i) for i in sent}
    assert records[inference_id]["status"] == "invalidated"
    assert all(r["status"] == "validated" for i, r in records.items() if i != inference_id)
    # the cheat's stats count it, and the developer paid for the honest ones only.
    participant = await net.query("participants/participant", address=cheat)
    assert participant["stats"]["invalidated"] == 1
    paid = sum(r["actual_cost"] for i, r in records.items() if i != inference_id)
    assert await net.balance(dev) == before - paid


async def test_a_host_that_keeps_tampering_turns_invalid_and_loses_its_power(net):
    cheat = net.participants[CHEAT].account

    async def invalid() -> bool:
        return (await net.query("participants/participant", address=cheat))["status"] == \
            "invalid"
    # When the cheat keeps executing (and being caught) until the chain marks it invalid,
    while not await invalid():
        [(inference_id, _)] = await served_by(net, {cheat}, 1)
        await final_status(net, inference_id)
    # then it has left the validator set and the epoch group at once,
    validators = {v["operator"]: v["power"] for v in await net.query("validators/set")}
    assert validators.get(cheat, 0) == 0
    group = await net.query("epochs/group", epoch="1")
    assert all(m["weight"] == 0 for m in group["members"] if m["address"] == cheat)
    await net.wait_height((await net.status())["height"] + 2)
    # and transfer agents send it no more work.
    async with net.developer_client(0) as http:
        executors = set()
        for k in range(10):
            r = await http.post(f"{net.participants[0].public_url}/v1/chat/completions",
                                json={"model": MODEL, "max_tokens": 8, "messages": [
                                    {"role": "user", "content": f"after {k}"}]})
            assert r.status_code == 200, r.text
            executors.add(r.headers["x-executor-address"])
    assert cheat not in executors
    await net.check_invariants()


async def test_honest_inferences_end_validated(net):
    honest = {net.participants[0].account, net.participants[1].account}
    for inference_id, _ in await served_by(net, honest, 3):
        assert (await final_status(net, inference_id))["status"] == "validated"
