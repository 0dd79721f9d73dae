"""Acceptance scenarios: ML-node scheduling (gonka-testermint.md section 5, items 32 and 34),
adapted to our protocol (chain/app/PROTOCOL.md, poc weight rule step 5; api/broker/state.py).

Four participants on one network, epochs of 40 blocks, two models in the registry: the
devnet's and SECOND. Participants 0 and 1 declare their ML node for both, participants 2 and 3
for the default only. One ML node serves one model in an epoch: the chain assigns each node the
first registry model (by id) it serves, so SECOND ("gonka/second-llama" sorts before
"gonka/tiny-llama") is served by participants 0 and 1, the default by 2 and 3. Every mock has
the same scripted response per model, so a validator's replay agrees with the executor's output.

Why four: a host whose ML node is disabled cannot recompute anyone's PoC samples, so it casts no
PoC validation votes. A commit is accepted when hosts holding more than half of the weight of
the *others* (the host itself excluded) vote "no fraud"; with three equal hosts and one silent,
each of the other two has exactly half and neither is accepted (nobody gets weight, and the
previous group carries over, the silent host included). With four, the two remaining voters
hold 2/3 of each one's others.

The scenarios follow each other through epochs 1-5: routing by model in epoch 1; participant
1's node disabled in epoch 1 (it keeps serving, skips the PoC of epoch 2, so no weight in 2),
enabled again in epoch 2 (back in 3); disabled again during the PoC of epoch 4 (too late to skip
it: weight in 4, none in 5).
"""

from __future__ import annotations

import pytest

from chain.app.profiles import PROFILES
from testermint_py.mock_mlnode import MockScript
from testermint_py.network import MODEL, Network, ParticipantSpec
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow

SECOND = "gonka/second-llama"
[DEFAULT_SPEC] = PROFILES["devnet"]["models"]["models"]
MODELS = {"models": [DEFAULT_SPEC, {**DEFAULT_SPEC, "id": SECOND}]}
RESPONSES = {MODEL: "The tiny llama answers.", SECOND: "The second llama answers."}
MOCK = MockScript(weight=150, weight_per_batch=150, responses=RESPONSES)
BOTH, DEFAULT_ONLY = (MODEL, SECOND), (MODEL,)
DISABLED = 1
NODE = "mock"        # the id testermint_py.network gives each participant's one ML node
PARAMS = {"epochs": {"epoch_length": 40, "first_poc_start": 20}, "models": MODELS}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    specs = [ParticipantSpec(mock=MOCK, models=models)
             for models in (BOTH, BOTH, DEFAULT_ONLY, DEFAULT_ONLY)]
    with running_network(tmp_path_factory.mktemp("scheduling"), n=len(specs), specs=specs,
                         params=PARAMS) as network:
        yield network


# -- helpers ------------------------------------------------------------------------------------

async def height(net: Network) -> int:
    async with net.rpc() as rpc:
        return (await rpc.status()).latest_height


async def inference_window(net: Network, blocks: int = 12) -> int:
    """Wait for an inference stage with at least `blocks` blocks before the next PoC and every
    enabled ML node serving; the effective epoch."""
    async def open_() -> int | None:
        h = await height(net)
        now = await net.query("epochs/current", at_height=str(h))
        if now["stage"] != "inference" or now["poc"]["poc_start"] - h < blocks:
            return None
        for p in net.participants:
            nodes = (await net.admin(p.index, "GET", "nodes")).json()
            if any(n["active"] and n["actual"] != "INFERENCE" for n in nodes):
                return None
        return now["effective_epoch"]
    return await net.each_block(open_, what=f"an inference stage with {blocks} blocks left")


async def next_poc_epoch(net: Network) -> int:
    """The first epoch whose PoC has not started at the chain's latest height: the one a change
    made before this call takes part in."""
    h = await height(net)
    now = await net.query("epochs/current", at_height=str(h))
    return now["effective_epoch"] + (1 if now["stage"] == "inference" else 2)


async def ask(net: Network, model: str, k: int, via: int = 0) -> tuple[str, str]:
    """One completion of `model` through participant `via`: (executor address, text)."""
    async with net.developer_client(via) as http:
        r = await http.post(f"{net.participants[via].public_url}/v1/chat/completions",
                            json={"model": model, "max_tokens": 64, "messages": [
                                {"role": "user", "content": f"question {k} for {model}"}]})
    assert r.status_code == 200, r.text
    return r.headers["x-executor-address"], r.json()["choices"][0]["message"]["content"]


async def executors_of(net: Network, model: str, until: set[str], limit: int = 40
                       ) -> set[str]:
    """Ask for `model` (through every transfer agent in turn) until the executors seen include
    `until` (or `limit` requests); the executors seen. Each answer must be `model`'s text."""
    seen: set[str] = set()
    for k in range(limit):
        executor, text = await ask(net, model, k, via=k % len(net.participants))
        assert text == RESPONSES[model], (model, executor, text)
        seen.add(executor)
        if until <= seen:
            break
    return seen


async def weights(net: Network, epoch: int) -> dict[str, int]:
    """Epoch `epoch`'s members with weight, by address."""
    group = await net.query("epochs/group", epoch=str(epoch))
    return {m["address"]: m["weight"] for m in group["members"] if m["weight"] > 0}


async def powers(net: Network) -> dict[str, int]:
    """The validators with power, by operator."""
    return {v["operator"]: v["power"] for v in await net.query("validators/set")
            if v["power"] > 0}


async def switch_to(net: Network, epoch: int) -> None:
    for p in net.participants:
        await net.wait_stage(epoch, "inference", i=p.index)


def addresses(net: Network, *indexes: int) -> list[str]:
    return [net.participants[i].account for i in indexes]


# -- scenarios ----------------------------------------------------------------------------------

async def test_requests_for_a_model_go_only_to_hosts_that_serve_it(net):
    p0, p1, p2, p3 = addresses(net, 0, 1, 2, 3)
    epoch = await inference_window(net)
    # Given the group of the epoch: each host's one node assigned to one model,
    group = await net.query("epochs/group", epoch=str(epoch))
    assert {m["address"]: m["models"] for m in group["members"]} == {
        p0: [SECOND], p1: [SECOND], p2: [MODEL], p3: [MODEL]}
    assert {w["model"]: w["total_weight"] for w in group["group"]["model_weights"]} == {
        SECOND: 300, MODEL: 300}
    # when developers ask every transfer agent for the second model, only its two hosts
    # execute it (both, chosen by weight), and the answer is that model's;
    assert await executors_of(net, SECOND, {p0, p1}) == {p0, p1}
    # and requests for the default model go to the hosts serving it.
    assert await executors_of(net, MODEL, {p2, p3}) == {p2, p3}
    await net.check_invariants()


async def test_a_disabled_ml_node_serves_its_epoch_then_skips_the_poc(net):
    p0, p1, p2, p3 = addresses(net, 0, 1, 2, 3)
    await inference_window(net)
    # When participant 1's operator disables its ML node in the inference stage,
    r = await net.admin(DISABLED, "POST", f"nodes/{NODE}/disable")
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["active"]) == (False, True)
    epoch = await next_poc_epoch(net)
    # it still serves this epoch's requests (it earned this epoch's weight);
    assert p1 in await executors_of(net, SECOND, {p1})
    # then it skips the next PoC: no commit, no weight, no power in the next epoch,
    await switch_to(net, epoch)
    commits = {c["participant"] for c in await net.query("poc/commits", epoch=str(epoch))}
    assert commits == {p0, p2, p3}
    assert await weights(net, epoch) == {p0: 150, p2: 150, p3: 150}
    assert await powers(net) == {p0: 150, p2: 150, p3: 150}
    # its node stays stopped, and the second model is served by participant 0 alone.
    [node] = (await net.admin(DISABLED, "GET", "nodes")).json()
    assert (node["enabled"], node["active"], node["actual"]) == (False, False, "STOPPED")
    await inference_window(net)
    assert await executors_of(net, SECOND, {p0, p1}, limit=8) == {p0}
    await net.check_invariants()


async def test_an_enabled_ml_node_earns_weight_again_from_the_next_poc(net):
    p0, p1, p2, p3 = addresses(net, 0, 1, 2, 3)
    await inference_window(net)
    # When the operator enables the node again in the inference stage, it is in force at once
    # (the node loads its model; it has no weight to serve with this epoch),
    r = await net.admin(DISABLED, "POST", f"nodes/{NODE}/enable")
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["active"]) == (True, True)
    epoch = await next_poc_epoch(net)
    # it takes part in the next PoC, and the host is back with its weight and power.
    await switch_to(net, epoch)
    assert await weights(net, epoch) == {p0: 150, p1: 150, p2: 150, p3: 150}
    assert await powers(net) == {p0: 150, p1: 150, p2: 150, p3: 150}
    await inference_window(net)
    assert await executors_of(net, SECOND, {p0, p1}) == {p0, p1}
    await net.check_invariants()


async def test_a_node_disabled_during_a_poc_still_mines_it_and_skips_the_next(net):
    p0, p1, p2, p3 = addresses(net, 0, 1, 2, 3)

    # Given a PoC whose start participant 1's API node has acted on (its node generates),
    async def generating() -> bool:
        [node] = (await net.admin(DISABLED, "GET", "nodes")).json()
        return node["intended"] == "POC_GENERATE"
    await net.each_block(generating, what="participant 1's node generating")
    epoch = (await net.query("epochs/current"))["upcoming_epoch"]
    # when the operator disables the node then,
    r = await net.admin(DISABLED, "POST", f"nodes/{NODE}/disable")
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["active"]) == (False, True)
    # it is too late to skip this PoC: the host keeps its weight in the epoch it forms,
    await switch_to(net, epoch)
    assert await weights(net, epoch) == {p0: 150, p1: 150, p2: 150, p3: 150}
    # and it skips the next one.
    await switch_to(net, epoch + 1)
    assert await weights(net, epoch + 1) == {p0: 150, p2: 150, p3: 150}
    assert await powers(net) == {p0: 150, p2: 150, p3: 150}
    await net.check_invariants()
