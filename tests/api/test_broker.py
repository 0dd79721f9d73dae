"""The broker against real-contract mock ML nodes: it drives every node through the epoch's
stages (generation except the nodes the chain keeps serving, validation, inference), lends the
least busy serving node, skips a node that stops answering and reconciles it when it is back,
and its admin routes list, add, enable/disable and delete nodes."""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import msgspec
import pytest
import trio
from quart import Response, request
from quart_trio import QuartTrio

from api.broker import Broker, Goal, NodeSpec, NodeView, PocSession, StageInfo, admin_blueprint
from api.broker.state import Lanes, fix_lanes, plan
from api.mlnodes import NoMlNode
from chain.types.poc import TEST_PARAMS, ProofBatch
from testermint_py.mock_mlnode import DEFAULT_CONFIG, MockScript, serve_mock_mlnode
from tests.api.test_mock_mlnode import serve_app

MODEL = "mock-llama"
BLOCK = "cd" * 32
KEY = "02" + "33" * 32
IDS = ("n1", "n2", "n3")


def session(epoch: int = 1, callback_url: str | None = None) -> PocSession:
    return PocSession(epoch=epoch, block_hash=BLOCK, block_height=20, public_key=KEY,
                      params=TEST_PARAMS, callback_url=callback_url)


def at(stage: str, *, epoch: int = 1, kept=(), poc: PocSession | None = None,
       height: int = 20) -> StageInfo:
    return StageInfo(height=height, stage=stage, epoch=epoch, kept_nodes=frozenset(kept),
                     poc=poc)


# -- the pure plan ------------------------------------------------------------------------------


def spec(node_id: str, *models: str) -> NodeSpec:
    return NodeSpec(node_id=node_id, url=f"http://{node_id}:8080", models=models or (MODEL,))


def test_plan_generation_keeps_the_chains_slots_serving_and_stops_the_inactive():
    specs = {i: spec(i) for i in IDS}
    active = {"n1": True, "n2": True, "n3": True}
    lanes = fix_lanes(1, ["n1", "n2"])
    targets = plan(at("sprint", kept={"n3"}, poc=session()), specs, active, lanes)
    assert targets["n3"].goal is Goal.INFERENCE and targets["n3"].model == MODEL
    assert [(targets[i].goal, targets[i].pow.node_id, targets[i].pow.node_count)
            for i in ("n1", "n2")] == [(Goal.POC_GENERATE, 0, 2), (Goal.POC_GENERATE, 1, 2)]
    # validation: the same PoC request (the ML node only switches phase), other goal
    validating = plan(at("poc_validation", kept={"n3"}, poc=session()), specs, active, lanes)
    assert validating["n1"].goal is Goal.POC_VALIDATE
    assert validating["n1"].pow == targets["n1"].pow
    # inference, and an inactive node is stopped in every stage
    after = plan(at("inference"), specs, active | {"n2": False}, lanes)
    assert [after[i].goal for i in IDS] == [Goal.INFERENCE, Goal.STOPPED, Goal.INFERENCE]


def test_plan_serves_the_chains_model_assignment_when_the_node_can():
    specs = {"n1": spec("n1", "a/one", "b/two"), "n2": spec("n2", "a/one")}
    info = StageInfo(height=5, stage="inference", epoch=1,
                     node_models={"n1": "b/two", "n2": "b/two"})
    targets = plan(info, specs, {"n1": True, "n2": True}, None)
    assert (targets["n1"].model, targets["n2"].model) == ("b/two", "a/one")


def test_a_node_without_a_lane_does_not_generate():
    targets = plan(at("sprint", poc=session()), {"n1": spec("n1")}, {"n1": True},
                   Lanes(1, {}))
    assert targets["n1"].goal is Goal.STOPPED


# -- against mock ML nodes ----------------------------------------------------------------------


class Batches:
    """The callback server the ML nodes POST generated nonces to."""

    def __init__(self) -> None:
        self.batches: list[ProofBatch] = []
        self.changed = trio.Event()
        self.app = QuartTrio("callbacks")

        @self.app.post("/poc/<kind>")
        async def receive(kind: str) -> Response:
            if kind == "generated":
                self.batches.append(msgspec.json.decode(await request.get_data(),
                                                        type=ProofBatch))
                self.changed.set()
                self.changed = trio.Event()
            return Response("{}", content_type="application/json")

    async def wait_for_lanes(self, lanes: set[int]) -> None:
        while {b.node_id for b in self.batches} < lanes:
            await self.changed.wait()


class Cluster:
    def __init__(self, broker: Broker, mocks: dict[str, httpx.AsyncClient], batches: Batches,
                 callback_url: str) -> None:
        self.broker, self.mocks, self.batches, self.callback_url = (broker, mocks, batches,
                                                                    callback_url)

    async def script(self, node_id: str, **fields) -> None:
        r = await self.mocks[node_id].post("/mock/script", json=fields)
        assert r.status_code == 200, r.text

    async def wait(self, want: dict[str, tuple]) -> list[NodeView]:
        """Until each named node is (reachable, mode, pow status, served model) as given."""
        def ok(views: list[NodeView]) -> bool:
            by_id = {v.node_id: v for v in views}
            return all((by_id[i].reachable, by_id[i].actual, by_id[i].pow_status,
                        by_id[i].served_model) == w for i, w in want.items())
        with trio.fail_after(30):  # a hang guard, not a timing assertion
            return await self.broker.wait_for(ok)


SERVING = (True, "INFERENCE", None, MODEL)
GENERATING = (True, "POW", "GENERATING", None)
VALIDATING = (True, "POW", "VALIDATING", None)


@asynccontextmanager
async def cluster(ids=IDS, **broker_options):
    cfg = msgspec.structs.replace(DEFAULT_CONFIG, port=0, send_interval_s=0.01,
                                  watchdog_interval_s=0.01)
    batches = Batches()
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        binds = await nursery.start(serve_app, batches.app)
        urls = {}
        for node_id in ids:
            urls[node_id] = await nursery.start(functools.partial(
                serve_mock_mlnode, cfg, script=MockScript(weight=20, weight_per_batch=5)))
        mocks = {i: await stack.enter_async_context(httpx.AsyncClient(base_url=u))
                 for i, u in urls.items()}
        options = {"probe_timeout_s": 0.5, "poll_interval_s": 0.2, "retry_delay_s": 0.01,
                   "max_retry_delay_s": 0.05} | broker_options
        broker = Broker([NodeSpec(node_id=i, url=urls[i], models=(MODEL,)) for i in ids],
                        **options)
        await nursery.start(broker.run)
        yield Cluster(broker, mocks, batches, f"{binds[0]}/poc")
        nursery.cancel_scope.cancel()


async def test_nodes_follow_the_stages_of_an_epoch():
    async with cluster() as c:
        # Given three nodes serving inference
        c.broker.reconcile(at("inference", epoch=0, height=10))
        await c.wait({i: SERVING for i in IDS})
        # when the Sprint starts and the chain keeps n3 serving,
        poc = session(callback_url=c.callback_url)
        c.broker.reconcile(at("sprint", kept={"n3"}, poc=poc))
        # then n1 and n2 generate (in lanes 0 and 1 of 2, delivered to the callback) and n3
        # keeps serving
        await c.wait({"n1": GENERATING, "n2": GENERATING, "n3": SERVING})
        with trio.fail_after(30):
            await c.batches.wait_for_lanes({0, 1})
        assert {b.block_hash for b in c.batches.batches} == {BLOCK}
        # when generation ends, they switch to validation and can recompute a batch
        c.broker.reconcile(at("commit_exchange", kept={"n3"}, poc=poc, height=28))
        await c.wait({"n1": VALIDATING, "n2": VALIDATING, "n3": SERVING})
        found = c.batches.batches[0]
        verdict = await c.broker.validate_poc(found)
        assert verdict.n_checked == len(found.nonces) and verdict.n_invalid == 0
        # and after the PoC every node serves inference again
        c.broker.reconcile(at("inference", height=40))
        await c.wait({i: SERVING for i in IDS})


async def test_leases_go_to_the_least_busy_serving_node():
    async with cluster() as c:
        c.broker.reconcile(at("inference", epoch=0))
        await c.wait({i: SERVING for i in IDS})
        async with c.broker.lease(MODEL) as a, c.broker.lease(MODEL) as b, \
                c.broker.lease(MODEL) as d:
            # three leases at once land on three different nodes
            assert {a.node_id, b.node_id, d.node_id} == set(IDS)
            async with c.broker.lease(MODEL) as e:
                assert e.node_id == "n1"  # all equally busy: the first by id
                async with c.broker.lease(MODEL) as f:
                    assert f.node_id == "n2"
        with pytest.raises(NoMlNode, match="no node declares it"):
            async with c.broker.lease("other/model"):
                pass
        # a generating node is never lent
        c.broker.reconcile(at("sprint", kept={"n2"}, poc=session(callback_url=c.callback_url)))
        await c.wait({"n1": GENERATING, "n2": SERVING, "n3": GENERATING})
        for _ in range(3):
            async with c.broker.lease(MODEL) as g:
                assert g.node_id == "n2"


async def test_an_unreachable_node_is_skipped_and_reconciled_when_it_is_back():
    async with cluster() as c:
        c.broker.reconcile(at("inference", epoch=0))
        await c.wait({i: SERVING for i in IDS})
        # Given n1 stops answering
        await c.script("n1", disappeared=True)
        c.broker.reconcile(at("inference", epoch=0, height=11))
        await c.broker.wait_for(lambda vs: vs[0].reachable is False)
        # then it is lent to nobody
        for _ in range(4):
            async with c.broker.lease(MODEL) as lease:
                assert lease.node_id != "n1"
        # when the PoC starts while it is away, the others generate
        poc = session(callback_url=c.callback_url)
        c.broker.reconcile(at("sprint", poc=poc))
        await c.wait({"n2": GENERATING, "n3": GENERATING})
        # and when it comes back it is reconciled to generation too (its own lane)
        await c.script("n1", disappeared=False)
        c.broker.reconcile(at("sprint", poc=poc, height=21))
        await c.wait({"n1": GENERATING})
        with trio.fail_after(30):
            await c.batches.wait_for_lanes({0, 1, 2})


async def test_a_disable_takes_effect_at_the_next_poc_start():
    async with cluster(ids=("n1", "n2")) as c:
        c.broker.reconcile(at("inference", epoch=0))
        await c.wait({"n1": SERVING, "n2": SERVING})
        view = c.broker.disable("n2")
        # still working this epoch
        assert (view.enabled, view.active, view.intended) == (False, True, "INFERENCE")
        c.broker.reconcile(at("sprint", poc=session(callback_url=c.callback_url)))
        await c.wait({"n1": GENERATING, "n2": (True, "STOPPED", None, None)})
        # enabled again mid-PoC, it waits for the inference stage
        assert c.broker.enable("n2").active is False
        c.broker.reconcile(at("inference", height=40))
        await c.wait({"n1": SERVING, "n2": SERVING})


# -- the admin routes ---------------------------------------------------------------------------


async def test_admin_routes():
    async with cluster(ids=("n1",)) as c:
        app = QuartTrio("admin")
        app.register_blueprint(admin_blueprint(c.broker))
        client = app.test_client()
        c.broker.reconcile(at("inference", epoch=0))
        await c.wait({"n1": SERVING})
        # list with the live state
        listed = (await client.get("/admin/v1/nodes"))
        assert listed.status_code == 200
        [n1] = msgspec.json.decode(await listed.get_data(), type=list[NodeView])
        assert (n1.node_id, n1.actual, n1.served_model, n1.reachable) == ("n1", "INFERENCE",
                                                                         MODEL, True)
        # add one; a duplicate id is refused; a bad body is a 400
        url = c.broker.node("n1").url
        new = {"node_id": "n9", "url": "http://127.0.0.1:9", "models": [MODEL]}
        r = await client.post("/admin/v1/nodes", json=new)
        assert r.status_code == 200 and (await r.get_json())["node_id"] == "n9"
        r = await client.post("/admin/v1/nodes", json=new | {"url": url})
        assert r.status_code == 409 and "already registered" in (await r.get_json())["error"]
        r = await client.post("/admin/v1/nodes", json={"node_id": "x"})
        assert r.status_code == 400
        # batch: each added or refused alone
        r = await client.post("/admin/v1/nodes/batch", json=[
            {"node_id": "n7", "url": "http://127.0.0.1:7", "models": [MODEL]}, new])
        body = await r.get_json()
        assert r.status_code == 201
        assert [a["node_id"] for a in body["added"]] == ["n7"]
        assert [x["node_id"] for x in body["refused"]] == ["n9"]
        # the node on a closed port is unreachable, and listed as such
        await c.broker.wait_for(lambda vs: {v.node_id: v.reachable for v in vs}["n9"] is False)
        # disable / enable / delete, and 404 for an unknown id
        r = await client.post("/admin/v1/nodes/n1/disable")
        assert r.status_code == 200 and (await r.get_json())["enabled"] is False
        r = await client.post("/admin/v1/nodes/n1/enable")
        assert (await r.get_json())["enabled"] is True
        assert (await client.delete("/admin/v1/nodes/n9")).status_code == 200
        r = await client.post("/admin/v1/nodes/n9/enable")
        assert r.status_code == 404 and (await r.get_json())["error"] == "node not found: n9"
        assert (await client.get("/admin/v1/nodes/n9")).status_code == 404
        ids = [v.node_id for v in c.broker.nodes()]
        assert ids == ["n1", "n7"]
