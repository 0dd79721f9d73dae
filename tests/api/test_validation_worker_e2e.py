"""The validation worker end to end on a real chain: host B's mock ML node tampers its output,
host A's worker is selected (low traffic and two hosts of equal weight: p = 1 for A), fetches
the payload from B's API node, replays on its own mock ML node, sends a failing MsgValidation,
and since A holds half of the epoch's weight its invalidate ballot decides the vote at once:
the inference ends INVALIDATED and the developer gets the cost back. Then a restart: a worker
stopped after it learned of a duty and before it could send it sends it exactly once after
restarting.

The network (two in-process chain nodes, two API nodes with mock ML nodes, both hosts members of
epoch 1 with the all-zero seed) is test_node_inference's; the worker runs in the network's trio
loop over host A's API node parts.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from api.poc.seeds import SeedRecord
from api.validation.worker import ValidationWorker, worker_for
from chain.types.inference import seed_commitment
from chain.types.msgs import MsgValidation
from tests.api.test_node_inference import (
    DEV,
    MESSAGES,
    MODEL,
    Network,
    balance,
    developer_client,
    rpc,
    steer,
)

A, B = 0, 1


class CommittedSeeds:
    """The seeds test_node_inference's network committed for epoch 1 (all zero)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get(self, epoch: int) -> SeedRecord | None:
        seed = bytes(32)
        return SeedRecord(epoch, self.address, seed, seed_commitment(self.address, epoch, seed))


class RunningWorker:
    def __init__(self, worker: ValidationWorker) -> None:
        self.worker = worker
        self.stopped = trio.Event()

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.worker.run(task_status=task_status)
        finally:
            self.stopped.set()

    async def stop(self) -> None:
        self.worker.stop()
        await self.stopped.wait()


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("validation-net"))
    net.start()
    yield net
    net.stop()


async def start_worker(net: Network) -> RunningWorker:
    host = net.hosts[A]

    async def start() -> RunningWorker:
        running = RunningWorker(worker_for(host.server.node, CommittedSeeds(host.address),
                                           retry_delay=0.05, max_retry_delay=0.5))
        await net._nursery.start(running.run)
        return running

    return await net.call(start)


async def guarded(fn, *args):
    """`await fn(*args)` under a hang guard (not a timing assertion), in the network's loop."""
    with trio.fail_after(60):
        return await fn(*args)


async def set_tamper(net: Network, tamper: str | None) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{net.hosts[B].mlnode_url}/mock/script", json={"tamper": tamper})
        assert r.status_code == 200, r.text


async def tampered_inference(net: Network) -> str:
    """A completion host B executes (and is TA of) with its ML node tampering tokens."""
    await set_tamper(net, "tokens")
    steer(net, B, B)
    try:
        reply = await developer_client(net, B).chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=12)
    finally:
        steer(net, B, None)
        await set_tamper(net, None)
    return reply.id


async def record_with_status(net: Network, inference_id: str, status: str) -> dict:
    with trio.fail_after(60):  # a hang guard, not a timing assertion
        async with rpc(net) as c, c.events(types=("none",)) as frames:
            async for _ in frames:
                record = await c.query("inference/inference", id=inference_id)
                if record["status"] == status:
                    return record
    raise AssertionError("unreachable")


def validations_in_outbox(net: Network, inference_id: bytes) -> list[MsgValidation]:
    outbox = net.hosts[A].server.node.sender.outbox
    return [e.msg for e in outbox.entries(limit=100_000)
            if isinstance(e.msg, MsgValidation) and e.msg.inference_id == inference_id]


async def test_a_tampered_inference_is_invalidated_and_the_developer_refunded(network):
    # Given host A's validation worker running,
    running = await start_worker(network)
    try:
        before = await balance(network, DEV)
        # when host B serves a completion with tampered tokens,
        inference_id = await tampered_inference(network)
        iid = bytes.fromhex(inference_id)
        # then A is selected and sends a failing validation,
        duty = await network.call(guarded, running.worker.wait_duty, iid, False, "sent")
        assert duty.executor == network.hosts[B].address
        assert duty.similarity_ppm == 0
        # its ballot (half of the weight) invalidates the inference,
        record = await record_with_status(network, inference_id, "invalidated")
        assert record["executor"] == network.hosts[B].address
        async with rpc(network) as c:
            votes = await c.query("validation/votes", id=inference_id)
        assert [b["voter"] for b in votes["vote"]["ballots"]] == [network.hosts[A].address]
        assert votes["vote"]["outcome"] == "invalidated"
        # and the developer has paid nothing in the end.
        assert await balance(network, DEV) == before
        assert len(validations_in_outbox(network, iid)) == 1
    finally:
        await network.call(running.stop)


async def test_a_duty_learned_before_a_restart_is_sent_once_after_it(network):
    # Given A's worker with no ML node to replay on (so it cannot finish a validation),
    network.hosts[A].pool.drained = True
    running = await start_worker(network)
    try:
        inference_id = await tampered_inference(network)
        iid = bytes.fromhex(inference_id)
        # when it has learned of the duty,
        duty = await network.call(guarded, running.worker.wait_duty, iid, False)
        assert duty.state == "pending"
        # and is stopped before it could send,
        await network.call(running.stop)
        assert validations_in_outbox(network, iid) == []
    finally:
        network.hosts[A].pool.drained = False
    # then a restarted worker sends it, once.
    running = await start_worker(network)
    try:
        duty = await network.call(guarded, running.worker.wait_duty, iid, False, "sent")
        assert duty.similarity_ppm == 0
        await record_with_status(network, inference_id, "invalidated")
        [msg] = validations_in_outbox(network, iid)
        assert not msg.revalidation
        async with rpc(network) as c:
            votes = await c.query("validation/votes", id=inference_id)
        assert [b["voter"] for b in votes["vote"]["ballots"]] == [network.hosts[A].address]
    finally:
        await network.call(running.stop)
