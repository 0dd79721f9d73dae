"""Fault injection (the harness issue, item 5): a validator killed and restarted mid-epoch, an
API node crashed with requests in flight, and a participant partitioned away for an epoch and
healed (netns backend). After each, every honest node agrees on every block, the supply is
accounted for, and no escrow is orphaned (`check_invariants`)."""

from __future__ import annotations

import pytest
import trio

from testermint_py.netns import netns_unavailable_reason
from testermint_py.network import MODEL, NetnsBackend, Network

pytestmark = pytest.mark.slow

# Epochs short enough that a scenario sees the next one (blocks are ~0.3-0.5 s here).
SHORT_EPOCHS = {"epochs": {"epoch_length": 40, "first_poc_start": 20}}


async def height(net: Network, i: int = 0) -> int:
    async with net.rpc(i) as rpc:
        return (await rpc.status()).latest_height


async def complete(net: Network, i: int, n: int) -> list[str]:
    """n completions through participant i; their inference ids."""
    ids = []
    async with net.developer_client(i) as http:
        for k in range(n):
            r = await http.post(f"{net.participants[i].public_url}/v1/chat/completions",
                                json={"model": MODEL, "max_tokens": 8, "messages": [
                                    {"role": "user", "content": f"fault {k}"}]})
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
    return ids


async def recorded(net: Network, ids: list[str], i: int = 0) -> None:
    statuses: dict[str, str] = {}

    async def all_done() -> bool:
        for inference_id in ids:
            r = await net._http("GET", f"{net.participants[i].public_url}/v1/chat/completions/"
                                f"{inference_id}")
            statuses[inference_id[:16]] = (r.json()["status"] if r.status_code == 200
                                           else f"HTTP {r.status_code}")
        return all(s in ("finished", "validated") for s in statuses.values())
    await net.each_block(all_done, i=i,
                         what=lambda: f"{len(ids)} inferences recorded (now {statuses})")


async def test_a_validator_killed_mid_epoch_catches_up_after_its_restart(tmp_path):
    async with Network.create(tmp_path, n=4) as net:
        await net.wait_ready()
        # When participant 3's chain node is killed (SIGKILL) in the middle of epoch 1,
        net.stop(3, ("chain",), kill=True)
        # the other three (3/4 of the power) keep committing blocks and serving inferences,
        at_kill = await height(net)
        ids = await complete(net, 0, 5)
        await net.wait_height(at_kill + 10)
        await recorded(net, ids)
        # and once restarted from its home, it catches up with them;
        net.start(3, ("chain",))
        target = await height(net)
        await net.wait_height(target, i=3)
        # every node agrees on every block, and the accounts balance.
        await net.check_invariants()


async def test_a_hung_validator_is_waited_out_and_catches_up_when_it_wakes(tmp_path):
    async with Network.create(tmp_path, n=4) as net:
        await net.wait_ready()
        # When participant 2's chain node hangs (SIGSTOP: its sockets open, nothing answered),
        net.pause(2, "chain")
        try:
            # the other three still commit blocks and record inferences,
            at_pause = await height(net)
            ids = await complete(net, 1, 3)
            await net.wait_height(at_pause + 8)
            await recorded(net, ids)
        finally:
            # and once it wakes (SIGCONT), it catches up with them.
            net.resume(2, "chain")
        await net.wait_height(await height(net), i=2)


async def test_an_api_node_crashed_with_requests_in_flight_records_them_after_restart(tmp_path):
    async with Network.create(tmp_path, n=3) as net:
        await net.wait_ready()
        # Given participant 0's API node answering requests (its start and finish messages
        # queued for the chain),
        ids: list[str] = []

        async def keep_sending() -> None:
            while True:
                ids.extend(await complete(net, 0, 1))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_sending)
            await net.each_block(lambda: _enough(ids), what="a few completions")
            # when it is killed (SIGKILL) while it serves them,
            net.stop(0, ("api",), kill=True)
            nursery.cancel_scope.cancel()
        # and restarted from its home,
        net.start(0, ("api",))
        await net.wait_up()
        # then every inference it answered reaches the chain, finished.
        await recorded(net, ids, i=1)
        await net.check_invariants()


async def _enough(ids: list[str]) -> bool:
    return len(ids) >= 3


@pytest.mark.skipif(netns_unavailable_reason() is not None,
                    reason=f"no network namespaces: {netns_unavailable_reason()}")
async def test_a_participant_partitioned_for_an_epoch_rejoins_and_agrees(tmp_path):
    async with Network.create(tmp_path, n=4, backend=NetnsBackend(4, prefix="tmpart"),
                              params=SHORT_EPOCHS) as net:
        await net.wait_ready()
        # When participant 3 is cut off from everyone for an epoch,
        await net.partition(3)
        start = await height(net)
        await net.wait_height(start + 40)
        # the others keep committing and serving,
        ids = await complete(net, 0, 3)
        await recorded(net, ids)
        # and once its link is back, it catches up and agrees with them on every block.
        await net.heal(3)
        await net.wait_height(await height(net), i=3)
        await net.check_invariants()
