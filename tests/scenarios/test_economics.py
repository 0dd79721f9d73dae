"""Acceptance scenarios: the money (gonka-testermint.md section 5, items 15-16, 18, 21, 35, 37,
39, adapted to our protocol). Three hosts of unequal PoC weight (so that votes and reward
shares weigh differently), one network for the module, tests in file order:

* escrow while a request is pending, the exact charge once it completes (15/16);
* an accepted request that never finishes expires and is refunded in full (21);
* the bandwidth limiter's 429s cost nothing and lift once capacity is free (35);
* governance: a parameter change passes or fails by the power behind its votes (39);
* collateral: deposit, withdraw, unbonding paid out at the next epoch (37);
* an epoch settles and every host's API node claims exactly its work coins and reward (18).

Every ML node answers the same scripted text (longer than any max_tokens asked here), so a
completion's length is exactly the max_tokens the ML node received, and validators replay it
as honest. The price stays the grace price throughout (no dynamic pricing in this module).
Developer 0 sends inferences; developer 1 proposes and locks collateral, so that its balance
moves only by what a scenario does (participants' balances also move by reward claims).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
import trio

from chain.rpc.client import RpcError
from chain.types.msgs import (
    MsgDepositCollateral,
    MsgSubmitProposal,
    MsgVote,
    MsgWithdrawCollateral,
)
from chain.types.msgs.params import ParamChange
from testermint_py.faults import send_tx
from testermint_py.mock_mlnode import MockScript
from testermint_py.network import MODEL, Network, ParticipantSpec
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow

PRICE = 10                      # ngonka per token: the grace price, for every epoch here
EXPIRATION_BLOCKS = 20
VOTING_PERIOD_BLOCKS = 10
# The bandwidth budget: each of the 3 hosts' share is 80,000 bytes per block, so a transfer
# agent holds 80,000 x (EXPIRATION_BLOCKS + 1) = 1,680,000 estimated bytes in flight: two
# requests asking for 1,000 tokens (655 bytes each) fit, a third does not; hundreds of the
# small requests the other scenarios send do.
BANDWIDTH_PER_BLOCK = 3 * 80_000
BYTES_PER_INPUT_TOKEN, BYTES_PER_OUTPUT_TOKEN = 3, 655
# What every ML node answers, whatever the prompt (cut by max_tokens).
ANSWER = ("Blocks follow blocks; the chain keeps the count, the hosts keep the work, and the "
          "developers pay for what they asked and nothing more. ") * 2
WEIGHTS = (100, 120, 150)       # PoC weights; the power cap (40% with 3 hosts) makes 150 -> 146
INFERENCE_STATUSES_DONE = ("finished", "validated")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    specs = [ParticipantSpec(mock=MockScript(weight=w, weight_per_batch=w,
                                             responses={MODEL: ANSWER})) for w in WEIGHTS]
    params = {
        # 60-block epochs: PoC takes 19 of them, the rest serve inference (see `serving`).
        "epochs": {"epoch_length": 60, "first_poc_start": 20},
        # The grace price for every epoch this module sees: costs are exact and fixed.
        "inference": {"grace_period_end_epoch": 1_000, "grace_per_token_price": PRICE,
                      "expiration_blocks": EXPIRATION_BLOCKS,
                      "bandwidth_bytes_per_block": BANDWIDTH_PER_BLOCK,
                      "bandwidth_bytes_per_input_token": BYTES_PER_INPUT_TOKEN,
                      "bandwidth_bytes_per_output_token": BYTES_PER_OUTPUT_TOKEN},
        "gov": {"voting_period_blocks": VOTING_PERIOD_BLOCKS},
    }
    with running_network(tmp_path_factory.mktemp("economics"), specs=specs, params=params,
                         developers=2) as network:
        yield network


# -- helpers ---------------------------------------------------------------------------------



async def record(net: Network, inference_id: str) -> dict | None:
    """The chain's record of an inference (None while the chain has none)."""
    try:
        return await net.query("inference/inference", id=inference_id)
    except RpcError as e:
        if e.app_code == 3:
            return None
        raise


async def record_when(net: Network, inference_id: str, ready: Callable[[dict], bool],
                      what: str) -> dict:
    """The record once `ready(record)` holds (asked after every block)."""
    async def check() -> dict | None:
        r = await record(net, inference_id)
        return r if r is not None and ready(r) else None
    return await net.each_block(check, what=f"inference {inference_id[:16]}: {what}")


async def completed(net: Network, inference_id: str) -> dict:
    return await record_when(net, inference_id,
                             lambda r: r["status"] in INFERENCE_STATUSES_DONE, "completed")


async def settlement(net: Network, address: str) -> dict | None:
    """The participant's unclaimed settlement (None when it has none)."""
    try:
        return await net.query("rewards/settlement", address=address)
    except RpcError as e:
        if e.app_code == 3:
            return None
        raise


async def all_claimed(net: Network) -> bool:
    """No participant holds an unclaimed settlement."""
    for p in net.participants:
        if await settlement(net, p.account) is not None:
            return False
    return True


async def height(net: Network) -> int:
    async with net.rpc(0) as rpc:
        return (await rpc.status()).latest_height


async def serving_now(net: Network, blocks: int) -> int | None:
    """The height if inference is served now with at least `blocks` blocks before the next
    PoC, else None. Each host here has one ML node, and a host keeps half of its nodes
    (rounded down) serving through a PoC: during PoC no node serves (transfer agents: 503)."""
    current = await net.query("epochs/current")
    h = await height(net)
    if current["upcoming_epoch"] is not None or current["poc"]["poc_start"] - h < blocks:
        return None
    for p in net.participants:
        nodes = (await net.admin(p.index, "GET", "nodes")).json()
        if not any(n["actual"] == "INFERENCE" for n in nodes):
            return None
    return h


async def serving(net: Network, blocks: int) -> int:
    """Wait for `serving_now`."""
    return await net.each_block(lambda: serving_now(net, blocks),
                                what=f"{blocks} blocks of inference before a PoC")


async def effective_epoch(net: Network) -> int:
    return (await net.query("epochs/current"))["effective_epoch"]


async def wait_epoch(net: Network, epoch: int) -> None:
    async def there() -> bool:
        return await effective_epoch(net) >= epoch
    await net.each_block(there, what=f"epoch {epoch} effective")


def body_of(max_field: str = "max_tokens", max_tokens: int = 12, content: str = "Count blocks",
            stream: bool = False) -> bytes:
    return msgspec.json.encode({"model": MODEL, "stream": stream, max_field: max_tokens,
                                "messages": [{"role": "user", "content": content}]})


async def post(net: Network, ta: int, body: bytes) -> httpx.Response:
    """A signed, non-streamed request of developer 0 to participant `ta`'s API node."""
    async with net.developer_client(ta) as http:
        return await http.post(f"{net.participants[ta].public_url}/v1/chat/completions",
                               content=body, headers={"Content-Type": "application/json"})


async def set_all_mocks(net: Network, **fields: Any) -> None:
    for i in range(len(net.participants)):
        await net.set_mock(i, **fields)


async def chat_requests(net: Network) -> dict[str, int]:
    """Chat completions each host's ML node has received (its mock's /mock/stats), by account."""
    counts = {}
    for p in net.participants:
        stats = (await net._http("GET", f"{p.mock_url}/mock/stats")).json()
        counts[p.account] = stats["requests"].get("/v1/chat/completions", 0)
    return counts


async def first_event(lines: Any) -> dict:
    """The first SSE data event of a stream (its lines' iterator)."""
    async for line in lines:
        if line.startswith("data: "):
            return msgspec.json.decode(line[6:])
    raise AssertionError("the stream ended before its first event")


# -- escrow and cost (15/16) -----------------------------------------------------------------

@pytest.mark.parametrize("max_field", ["max_tokens", "max_completion_tokens"])
async def test_a_pending_request_holds_its_escrow_and_completion_charges_the_cost(net, max_field):
    dev = net.developers[0].address
    await serving(net, 10)
    before = await net.balance(dev)
    asked = 12
    body = body_of(max_field, asked, stream=True)
    asked_before = await chat_requests(net)
    # Given every ML node streaming slowly (the executor has accepted the request, the answer
    # is still coming: the transfer agent records its Start once the executor's answer headers
    # are in, so a request pending with its escrow held is one whose answer is streaming),
    await set_all_mocks(net, token_delay_s=0.5)
    try:
        async with net.developer_client(0) as http, http.stream(
                "POST", f"{net.participants[0].public_url}/v1/chat/completions", content=body,
                headers={"Content-Type": "application/json"}) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            inference_id = (await first_event(lines))["id"]
            # when the transfer agent's MsgStartInference is on chain while the answer streams,
            pending = await record_when(net, inference_id, lambda rec: rec["start_height"] > 0,
                                        "started")
            held = await net.balance(dev)
            # then the record is still open and holds (prompt estimate + max_tokens) x price,
            # the prompt estimate being the body's length in bytes, and the developer's balance
            # dropped by exactly that escrow;
            assert pending["status"] == "started", pending
            assert pending["max_tokens"] == asked
            assert pending["per_token_price"] == PRICE
            assert pending["escrow"] == (len(body) + asked) * PRICE
            assert before - held == pending["escrow"]
            # (the answer is let go)
            await set_all_mocks(net, token_delay_s=0.0)
            events = [line[6:] async for line in lines if line.startswith("data: ")]
            assert events[-1] == "[DONE]"
            text = "".join(choice["delta"].get("content") or ""
                           for event in events[:-1]
                           for choice in msgspec.json.decode(event).get("choices", []))
    finally:
        await set_all_mocks(net, token_delay_s=0.0)
    # the executor's ML node got the request once, with the developer's max_tokens: it
    # stopped there, mid-answer;
    done = await completed(net, inference_id)
    asked_after = await chat_requests(net)
    assert {a: asked_after[a] - asked_before[a] for a in asked_after} == {
        a: int(a == done["executor"]) for a in asked_after}
    assert text == ANSWER[:asked]
    # once complete, the developer paid exactly the executor's real token counts, the rest of
    # the escrow back.
    assert done["completion_tokens"] == asked
    assert done["actual_cost"] == (done["prompt_tokens"] + asked) * PRICE < done["escrow"]
    assert await net.balance(dev) == before - done["actual_cost"]
    await net.check_invariants()


# -- expiry (21) -----------------------------------------------------------------------------

async def test_an_accepted_request_that_never_finishes_expires_and_is_refunded(net):
    dev = net.developers[0].address
    await serving(net, 5)
    before = await net.balance(dev)
    epoch_before = await effective_epoch(net)
    missed_before = {p.account: (await net.query("participants/participant",
                                                 address=p.account))["stats"]["missed_requests"]
                     for p in net.participants}
    # Given every ML node's stream breaking off after its first events (no [DONE], no usage),
    await set_all_mocks(net, stream_cut_after=3)
    try:
        # when the developer streams a request (the executor accepted it, then its ML node
        # died mid-answer: the executor records nothing and sends no MsgFinishInference),
        async with net.developer_client(1) as http, http.stream(
                "POST", f"{net.participants[1].public_url}/v1/chat/completions",
                content=body_of(stream=True), headers={"Content-Type": "application/json"}) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            inference_id = (await first_event(lines))["id"]
            seen = []
            try:
                seen = [line async for line in lines]
            except httpx.HTTPError:
                pass    # the relay may end mid-body as well
            assert "data: [DONE]" not in seen
    finally:
        await set_all_mocks(net, stream_cut_after=None)
    # then the transfer agent's Start holds the escrow,
    started = await record_when(net, inference_id, lambda rec: rec["start_height"] > 0,
                                "started")
    assert started["finish_height"] == 0 and started["escrow"] > 0
    # and once the inference params' expiration has passed, the record is expired,
    expired = await record_when(net, inference_id, lambda rec: rec["status"] == "expired",
                                "expired")
    assert expired["expires_at"] == expired["first_seen_height"] + EXPIRATION_BLOCKS
    assert expired["actual_cost"] == 0
    # the escrow is back to the last ngonka,
    assert await net.balance(dev) == before
    # and the executor has one more missed request this settlement period (stats are reset
    # when an epoch settles).
    executor = started["executor"]
    stats = (await net.query("participants/participant", address=executor))["stats"]
    base = missed_before[executor] if await effective_epoch(net) == epoch_before else 0
    assert stats["missed_requests"] == base + 1
    await net.check_invariants()


# -- governance (39) -------------------------------------------------------------------------

async def test_a_param_change_passes_or_fails_by_the_power_behind_its_votes(net):
    proposer = net.developers[1]
    before = await net.balance(proposer.address)
    gov = await net.query("params/gov")
    deposit = gov["min_deposit"]
    old = await net.query("params/inference")
    powers = {v["operator"]: v["power"] for v in await net.query("validators/set")}
    light, middle, heavy = sorted(net.participants, key=lambda p: powers[p.account])
    assert powers[light.account] < powers[middle.account] < powers[heavy.account]
    assert powers[light.account] + powers[middle.account] > powers[heavy.account]
    # Given two proposals from a developer, each with the minimum deposit (voting starts),
    height = await send_tx(net, proposer, *(
        MsgSubmitProposal(proposer=proposer.address, initial_deposit=deposit, title=title,
                          changes=(ParamChange(module="inference", key=key, value=value),))
        for title, key, value in (("raise the request advance", "max_request_advance_s", "90"),
                                  ("double the request age", "max_request_age_s", "600"))))
    proposals = {p["title"]: p for p in await net.query("gov/proposals")
                 if p["submit_height"] == height}
    raise_advance = proposals["raise the request advance"]["id"]
    double_age = proposals["double the request age"]["id"]
    assert await net.balance(proposer.address) == before - 2 * deposit
    # when the heaviest host votes yes on the first and no on the second, the lightest the
    # other way round, and the middle one stays out (one voter each side: power decides),
    for p, first, second in ((heavy, "yes", "no"), (light, "no", "yes")):
        await send_tx(net, p.index,
                      MsgVote(voter=p.account, proposal_id=raise_advance, option=first),
                      MsgVote(voter=p.account, proposal_id=double_age, option=second))

    async def decided() -> list[dict] | None:
        got = [await net.query("gov/proposal", id=str(i)) for i in (raise_advance, double_age)]
        return got if all(p["status"] != "voting_period" for p in got) else None
    passed, rejected = await net.each_block(decided, what="the proposals' tallies")
    # then after the voting period the first passed with the heavy host's power behind it,
    assert passed["status"] == "passed", passed
    assert (passed["tally"]["yes"], passed["tally"]["no"]) == (powers[heavy.account],
                                                               powers[light.account])
    assert passed["tally"]["total_power"] == sum(powers.values())
    # and the second was rejected by that same power against it,
    assert rejected["status"] == "rejected", rejected
    assert (rejected["tally"]["yes"], rejected["tally"]["no"]) == (powers[light.account],
                                                                   powers[heavy.account])
    # so only the first change is in force,
    now = await net.query("params/inference")
    assert now["max_request_advance_s"] == 90
    assert now["max_request_age_s"] == old["max_request_age_s"]
    assert {k: v for k, v in now.items() if k != "max_request_advance_s"} == \
        {k: v for k, v in old.items() if k != "max_request_advance_s"}
    # and both deposits came back.
    assert await net.balance(proposer.address) == before
    await net.check_invariants()


# -- bandwidth (35) --------------------------------------------------------------------------

async def test_requests_over_the_bandwidth_share_get_429_and_cost_nothing(net):
    dev = net.developers[0].address
    before = await net.balance(dev)
    large = [body_of(max_tokens=1_000, content=f"large request {k}") for k in range(6)]
    size = len(large[0]) * BYTES_PER_INPUT_TOKEN + 1_000 * BYTES_PER_OUTPUT_TOKEN
    share = BANDWIDTH_PER_BLOCK // len(net.participants)
    fits = share * (EXPIRATION_BLOCKS + 1) // size
    assert 1 <= fits < len(large)
    await serving(net, 10)
    # Given ML nodes slow to answer (admitted requests stay in flight a while),
    await set_all_mocks(net, delay_s=2.0, delay_paths=["/v1/chat"])
    answers: list[httpx.Response] = []
    try:
        # when six large requests reach one transfer agent at once,
        async def one(body: bytes) -> None:
            answers.append(await post(net, 0, body))
        async with trio.open_nursery() as nursery:
            for body in large:
                nursery.start_soon(one, body)
    finally:
        await set_all_mocks(net, delay_s=0.0)
    # then as many as fit in its share are served and the others refused with a 429 that
    # says when to come back,
    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert len(served) == fits, [(r.status_code, r.text[:300]) for r in answers]
    for r in refused:
        assert (r.status_code, r.json()["error"]["code"]) == (429, "capacity_reached"), r.text
        assert int(r.headers["Retry-After"]) > 0
    # and after the window (the served requests are done), large requests are served again;
    await net.wait_height(await height(net) + EXPIRATION_BLOCKS + 1)
    await serving(net, 5)
    again = [body_of(max_tokens=1_000, content=f"large again {k}") for k in range(fits)]
    retried: list[httpx.Response] = []

    async def retry(body: bytes) -> None:
        retried.append(await post(net, 0, body))
    async with trio.open_nursery() as nursery:
        for body in again:
            nursery.start_soon(retry, body)
    assert [r.status_code for r in retried] == [200] * fits, [r.text for r in retried]
    # the refused ones left no trace: the developer paid for the served ones only.
    costs = 0
    for r in served + retried:
        costs += (await completed(net, r.json()["id"]))["actual_cost"]
    assert await net.balance(dev) == before - costs
    await net.check_invariants()


# -- collateral (37) -------------------------------------------------------------------------

async def test_collateral_is_locked_then_unbonds_and_is_paid_back_an_epoch_later(net):
    owner = net.developers[1]
    before = await net.balance(owner.address)
    amount = 1_000

    async def collateral() -> dict:
        return await net.query("collateral/participant", address=owner.address)

    async def module_holds() -> int:
        return (await net.query("bank/module_account", name="collateral"))["amount"]
    held_before = await module_holds()
    # When the account deposits collateral,
    await send_tx(net, owner, MsgDepositCollateral(participant=owner.address, amount=amount))
    # then it is recorded as active and the coins left the balance for the module account;
    assert (await collateral())["active"] == amount
    assert (await collateral())["unbonding"] == []
    assert await net.balance(owner.address) == before - amount
    assert await module_holds() == held_before + amount
    # when it withdraws it all,
    epoch = await effective_epoch(net)
    await send_tx(net, owner, MsgWithdrawCollateral(participant=owner.address, amount=amount))
    # then nothing is active, the amount unbonds until the next epoch, still held;
    unbonding = await collateral()
    assert unbonding["active"] == 0
    assert unbonding["unbonding"] == [{"completion_epoch": epoch + 1, "amount": amount}]
    assert await net.balance(owner.address) == before - amount
    # and once that epoch is effective, it is paid back in full.
    await wait_epoch(net, epoch + 1)
    assert (await collateral())["unbonding"] == []
    assert await net.balance(owner.address) == before
    assert await module_holds() == held_before
    await net.check_invariants()


# -- settlement and claims (18), downtime (37) ------------------------------------------------

def work_shares(records: list[dict]) -> dict[str, int]:
    """Work coins per worker of an epoch's completed records (PROTOCOL.md, validation: the
    workers are the executor and its validators, cost // n each, the remainder to the
    executor)."""
    owed: dict[str, int] = {}
    for r in records:
        if r["status"] not in INFERENCE_STATUSES_DONE:
            continue
        workers = [r["executor"], *r["validated_by"]]
        share = r["actual_cost"] // len(workers)
        for w in workers:
            owed[w] = owed.get(w, 0) + share
        owed[r["executor"]] += r["actual_cost"] % len(workers)
    return owed


def reward_shares(members: list[dict], emission: int) -> dict[str, int]:
    """The epoch's emission split by weight (PROTOCOL.md, rewards: floor shares, the remainder
    to the first address with a positive share)."""
    eligible = sorted((m for m in members if m["weight"] > 0), key=lambda m: m["address"])
    total = sum(m["weight"] for m in eligible)
    shares = {m["address"]: m["weight"] * emission // total for m in eligible}
    first = next(a for a, s in shares.items() if s > 0)
    shares[first] += emission - sum(shares.values())
    assert sum(shares.values()) == emission
    return shares


async def quiet_epoch(net: Network, blocks: int) -> int:
    """Wait until every earlier settlement is claimed and inference is served for at least
    `blocks` blocks before the next PoC (what a scenario does next falls in one epoch, and
    participants' balances move by nothing else meanwhile); the effective epoch."""
    async def quiet() -> bool:
        return await all_claimed(net) and bool(await serving_now(net, blocks))
    await net.each_block(quiet, what=f"every reward claimed, {blocks} blocks before a PoC")
    return await effective_epoch(net)


async def settled_and_claimed(net: Network, epoch: int) -> dict[str, int]:
    """Wait for `epoch`'s settlement and every host's claim of it; what each host was owed:
    its work coins (shares of every inference of the epoch it executed or validated, read
    before the records are pruned two epochs on) plus its weight's share of the emission."""
    await wait_epoch(net, epoch + 1)
    records = await net.query("inference/epoch", epoch=str(epoch))
    members = (await net.query("epochs/group", epoch=str(epoch)))["members"]
    emission = (await net.query("rewards/emission", epoch=str(epoch)))["amount"]
    await net.each_block(lambda: all_claimed(net), what=f"the rewards of epoch {epoch} claimed")
    assert await effective_epoch(net) == epoch + 1, "a claim came too late: burned, not paid"
    work, reward = work_shares(records), reward_shares(members, emission)
    return {p.account: work.get(p.account, 0) + reward[p.account] for p in net.participants}


async def test_a_host_that_misses_requests_has_its_collateral_slashed_at_settlement(net):
    params = await net.query("params/collateral")
    host = max(net.participants, key=lambda p: WEIGHTS[p.index])   # the likeliest executor
    epoch = await quiet_epoch(net, EXPIRATION_BLOCKS + 10)
    before = await net.balance(host.account)
    # Given a host with collateral, part of it unbonding until the next epoch,
    await send_tx(net, host.index, MsgDepositCollateral(participant=host.account, amount=1_000))
    await send_tx(net, host.index, MsgWithdrawCollateral(participant=host.account, amount=400))
    held = await net.query("collateral/participant", address=host.account)
    assert (held["active"], held["unbonding"]) == (
        600, [{"completion_epoch": epoch + 1, "amount": 400}])
    # when its ML node breaks off every answer and a request it accepted expires unfinished
    # (requests other hosts execute are served),
    await net.set_mock(host.index, stream_cut_after=3)
    try:
        for k in range(30):
            async with net.developer_client(0) as http, http.stream(
                    "POST", f"{net.participants[0].public_url}/v1/chat/completions",
                    content=body_of(content=f"downtime {k}", stream=True),
                    headers={"Content-Type": "application/json"}) as r:
                assert r.status_code == 200
                lines = r.aiter_lines()
                inference_id = (await first_event(lines))["id"]
                try:
                    async for _ in lines:
                        pass
                except httpx.HTTPError:
                    pass
            if r.headers["x-executor-address"] == host.account:
                break
        else:
            raise AssertionError("30 requests and none executed by the heaviest host")
    finally:
        await net.set_mock(host.index, stream_cut_after=None)
    await record_when(net, inference_id, lambda rec: rec["status"] == "expired", "expired")
    stats = (await net.query("participants/participant", address=host.account))["stats"]
    served, missed = stats["inference_count"], stats["missed_requests"]
    assert missed * 10_000 > params["downtime_missed_bps"] * (served + missed), stats
    # then when the epoch settles, its active and unbonding collateral each lose the downtime
    # fraction (burned), and what is left unbonding is paid out as the next epoch starts,
    owed = await settled_and_claimed(net, epoch)
    cut = params["slash_downtime_bps"]
    after = await net.query("collateral/participant", address=host.account)
    assert (after["active"], after["unbonding"]) == (600 - 600 * cut // 10_000, [])
    assert await net.balance(host.account) == (before - 1_000 + (400 - 400 * cut // 10_000)
                                               + owed[host.account])
    # and the supply lost exactly what was burned.
    await net.check_invariants()


async def test_an_epoch_settles_and_every_host_claims_its_work_and_reward(net):
    dev = net.developers[0].address
    hosts = [p.account for p in net.participants]
    # Given a quiet start (every earlier settlement claimed, the next PoC far enough),
    await quiet_epoch(net, 15)
    before = {a: await net.balance(a) for a in [*hosts, dev]}
    # when the developer has inferences served through each transfer agent,
    ids = []
    for ta in range(len(net.participants)):
        r = await post(net, ta, body_of(content=f"settle {ta}"))
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    mine = [await completed(net, i) for i in ids]
    [epoch] = {r["epoch"] for r in mine}
    # and the epoch ends, then once every host's API node has claimed its settlement, each
    # host's balance grew by exactly its work coins (its share of every inference it executed
    # or validated in the epoch) and its weight's share of the epoch's emission,
    owed = await settled_and_claimed(net, epoch)
    for a in hosts:
        assert await net.balance(a) - before[a] == owed[a], a
    # the developer paid exactly the costs of its inferences,
    assert before[dev] - await net.balance(dev) == sum(r["actual_cost"] for r in mine)
    # and the supply is the genesis supply plus what was minted minus what was burned.
    await net.check_invariants()
