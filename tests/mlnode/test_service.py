"""The ML node service through HTTP: the real app on Hypercorn (port 0), the real PoC function
with TEST_PARAMS, a callback server run by the test, and a fake inference backend."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import numpy as np
import pytest
import trio
import trio.testing
from quart import Response, request
from quart_trio import QuartTrio

from chain.types.poc import TEST_PARAMS, ProofBatch, ValidatedBatch
from mlnode.pow.model import PocModel
from mlnode.service import MlNodeConfig, serve_mlnode
from testermint_py.http import serve_app

BLOCK = "ab" * 32
OTHER_BLOCK = "cd" * 32
KEY = "02" + "11" * 32
R_TARGET = 1.41          # about half the nonces of TEST_PARAMS are valid
PARAMS = msgspec.structs.replace(TEST_PARAMS, r_target=R_TARGET)
API = "/api/v1"


# -- test doubles ---------------------------------------------------------------------------

class CountingFactory:
    """PocModel.build that counts builds and distance calls (from worker threads)."""

    def __init__(self, fail: bool = False) -> None:
        self.builds: list[tuple[object, bytes]] = []
        self.calls = 0
        self.fail = fail

    def __call__(self, params, block_hash: bytes):
        if self.fail:
            raise RuntimeError("out of device memory")
        self.builds.append((params, block_hash))
        model = PocModel.build(params, block_hash)
        factory = self

        class Counted:
            @property
            def params(self):
                return model.params

            def distances(self, public_key, nonces):
                factory.calls += 1
                return model.distances(public_key, nonces)

        return Counted()


class FakeReplay(msgspec.Struct, forbid_unknown_fields=True):
    tokens: list[int]


class FakeBackend:
    """An inference backend that starts instantly (or when released) and can be killed."""

    def __init__(self) -> None:
        self.running = False
        self.fail_start: str | None = None
        self.block_start = False
        self.start_began = trio.Event()
        self.release = trio.Event()
        self.downs = 0
        self.down_called = trio.Event()
        self.models: list[str] = []

    async def up(self, model, dtype, additional_args, served_model_name):
        self.start_began.set()
        if self.block_start:
            await self.release.wait()
        if self.fail_start:
            raise RuntimeError(self.fail_start)
        self.models.append(model)
        self.running = True

    async def down(self):
        self.running = False
        self.downs += 1
        self.down_called.set()
        self.down_called = trio.Event()

    async def aclose(self):
        await self.down()

    def is_running(self):
        return self.running

    async def healthy(self):
        return self.running

    def describe_exit(self):
        return "exit status -9"

    async def forward(self, req, path):
        body = await req.get_data(as_text=False)
        return Response(msgspec.json.encode({"path": path, "method": req.method,
                                             "body": body.decode()}),
                        content_type="application/json")

    replay_request_type = FakeReplay

    async def replay(self, req):
        return {"replayed": req.tokens}


class Callbacks:
    """The API node's callback endpoints: records what the ML node POSTs."""

    def __init__(self) -> None:
        self.generated: list[ProofBatch] = []
        self.validated: list[ValidatedBatch] = []
        self.failures_left = 0
        self.failure_status = 503
        self.refused = 0
        self.changed = trio.Event()
        self.app = QuartTrio("callbacks")

        @self.app.post("/cb/<kind>")
        async def receive(kind: str) -> Response:
            if self.failures_left:
                self.failures_left -= 1
                self.refused += 1
                return Response("no", status=self.failure_status)
            body = await request.get_data(as_text=False)
            if kind == "generated":
                self.generated.append(msgspec.json.decode(body, type=ProofBatch))
            else:
                self.validated.append(msgspec.json.decode(body, type=ValidatedBatch))
            self.changed.set()
            self.changed = trio.Event()
            return Response("{}", content_type="application/json")

    @property
    def nonces(self) -> list[int]:
        return [n for b in self.generated for n in b.nonces]

    async def wait_for(self, predicate) -> None:
        while not predicate():
            await self.changed.wait()


class Node:
    def __init__(self, client: httpx.AsyncClient, backend: FakeBackend, factory: CountingFactory,
                 callback_url: str) -> None:
        self.http = client
        self.backend = backend
        self.factory = factory
        self.callback_url = callback_url

    async def state(self) -> dict:
        return (await self.http.get(f"{API}/state")).json()

    async def pow_status(self) -> dict:
        return (await self.http.get(f"{API}/pow/status")).json()

    def init_body(self, **changes) -> bytes:
        fields = dict(block_hash=BLOCK, block_height=10, public_key=KEY, node_id=1,
                      node_count=2, params=PARAMS, url=self.callback_url, batch_size=16)
        fields.update(changes)
        return msgspec.json.encode(fields)   # not through PowInitRequest: bad ones too


@asynccontextmanager
async def running_node(factory: CountingFactory | None = None, **config) -> AsyncIterator[
        tuple[Node, Callbacks]]:
    factory = factory or CountingFactory()
    backend = FakeBackend()
    callbacks = Callbacks()
    cfg = MlNodeConfig(port=0, send_interval_s=0.01, watchdog_interval_s=0.01, **config)
    async with trio.open_nursery() as nursery:
        cb_binds = await nursery.start(serve_app, callbacks.app)
        url = await nursery.start(functools.partial(
            serve_mlnode, cfg, backend=backend, model_factory=factory))
        async with httpx.AsyncClient(base_url=url) as client:
            yield Node(client, backend, factory, f"{cb_binds[0]}/cb"), callbacks
        nursery.cancel_scope.cancel()


async def eventually(check) -> None:
    """Wait until `check()` (async) is true, yielding to the service between tries."""
    while not await check():
        await trio.sleep(0.005)


def true_distances(nonces) -> np.ndarray:
    model = PocModel.build(PARAMS, bytes.fromhex(BLOCK))
    return model.distances(bytes.fromhex(KEY), np.asarray(nonces, dtype=np.uint64))


# -- PoC generation -------------------------------------------------------------------------

async def test_generation_posts_this_nodes_valid_nonces_once_each_and_in_order():
    async with running_node() as (node, callbacks):
        # Given a node told to generate as node 1 of 2
        r = await node.http.post(f"{API}/pow/init/generate", content=node.init_body())
        assert r.status_code == 200, r.text
        assert r.json()["pow_status"]["status"] in ("LOADING", "GENERATING")
        assert (await node.state()) == {"state": "POW"}

        # When it has posted at least 60 valid nonces to the callback
        await callbacks.wait_for(lambda: len(callbacks.nonces) >= 60)
        r = await node.http.post(f"{API}/pow/stop")
        assert r.json()["pow_status"]["status"] == "NOT_LOADED"

    # Then every batch names the session, and the nonces are this node's odd ones, each once
    got = callbacks.nonces
    assert all((b.block_hash, b.public_key, b.block_height, b.node_id) == (BLOCK, KEY, 10, 1)
               for b in callbacks.generated)
    assert len(set(got)) == len(got)
    assert all(n % 2 == 1 for n in got)
    # ... with their true distances, all below r_target
    dists = [d for b in callbacks.generated for d in b.dist]
    assert dists == pytest.approx(true_distances(got).tolist(), abs=0)
    assert max(dists) < R_TARGET
    # ... and none skipped: they are exactly the valid ones among the first nonces tried
    tried = np.arange(1, max(got) + 1, 2, dtype=np.uint64)
    expected = tried[true_distances(tried) < R_TARGET]
    assert got == expected.tolist()


async def test_refused_callbacks_are_retried_without_loss_or_repeats():
    async with running_node() as (node, callbacks):
        # Given a callback server that refuses the first five POSTs
        callbacks.failures_left = 5
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body(node_id=0))

        # When the node keeps generating until 40 nonces got through
        await callbacks.wait_for(lambda: len(callbacks.nonces) >= 40)
        status = await node.pow_status()
        await node.http.post(f"{API}/stop")

    # Then the refusals were retried: no nonce lost or sent twice
    assert callbacks.refused == 5
    got = callbacks.nonces
    tried = np.arange(0, max(got) + 1, 2, dtype=np.uint64)
    assert got == tried[true_distances(tried) < R_TARGET].tolist()
    assert status["sent"] + status["pending"] == status["valid"]
    assert status["checked"] >= status["valid"] > 0


async def test_a_body_the_callback_rejects_is_dropped_not_resent_forever():
    async with running_node() as (node, callbacks):
        # Given a callback server that answers 400 to the first two POSTs
        callbacks.failures_left, callbacks.failure_status = 2, 400
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body())

        # When later POSTs get through
        await callbacks.wait_for(lambda: len(callbacks.nonces) >= 20)
        status = await node.pow_status()
        await node.http.post(f"{API}/stop")

    # Then the rejected nonces were counted and dropped, the rest delivered once each
    assert status["rejected"] > 0
    assert status["sent"] + status["rejected"] + status["pending"] == status["valid"]
    assert len(set(callbacks.nonces)) == len(callbacks.nonces)


async def test_stop_ends_generation_before_it_answers():
    async with running_node() as (node, callbacks):
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body())
        await callbacks.wait_for(lambda: len(callbacks.nonces) >= 10)

        # When the node is stopped
        r = await node.http.post(f"{API}/stop")
        assert r.status_code == 200 and r.json() == {"status": "OK"}

        # Then no batch runs any more: nothing computes while everything else idles
        calls = node.factory.calls
        await trio.testing.wait_all_tasks_blocked()
        assert node.factory.calls == calls
        assert await node.state() == {"state": "STOPPED"}
        assert (await node.pow_status())["status"] == "NOT_LOADED"


async def test_reinit_with_the_same_request_keeps_the_model_and_a_new_block_rebuilds():
    async with running_node() as (node, callbacks):
        body = node.init_body()
        await node.http.post(f"{API}/pow/init/generate", content=body)
        await callbacks.wait_for(lambda: len(callbacks.nonces) >= 5)

        # When the same request comes again, and then as init/validate
        r = await node.http.post(f"{API}/pow/init/generate", content=body)
        assert r.json()["pow_status"]["status"] == "GENERATING"
        r = await node.http.post(f"{API}/pow/init/validate", content=body)
        assert r.json()["pow_status"]["status"] == "VALIDATING"
        # Then the model was built once
        assert len(node.factory.builds) == 1

        # When a request differs only in its node (same block), nothing is rebuilt either
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body(node_id=0))
        await eventually(lambda: _generating(node))
        assert len(node.factory.builds) == 1

        # When another block comes, the model is rebuilt for it
        await node.http.post(f"{API}/pow/init/generate",
                             content=node.init_body(block_hash=OTHER_BLOCK))
        await eventually(lambda: _generating(node))
        assert [h.hex() for _, h in node.factory.builds] == [BLOCK, OTHER_BLOCK]


async def _generating(node: Node) -> bool:
    status = await node.pow_status()
    return status["is_model_initialized"] and status["status"] == "GENERATING"


async def test_phase_commands_switch_an_initialised_session_and_are_refused_before_init():
    async with running_node() as (node, _):
        r = await node.http.post(f"{API}/pow/phase/generate")
        assert r.status_code == 409
        assert r.json() == {"error": "cannot run PoC: PoC is not running; POST "
                            "/api/v1/pow/init/generate or /api/v1/pow/init/validate first",
                            "state": "STOPPED"}

        await node.http.post(f"{API}/pow/init/validate", content=node.init_body())
        r = await node.http.post(f"{API}/pow/phase/generate")
        assert r.json()["pow_status"]["status"] in ("LOADING", "GENERATING")
        await eventually(lambda: _generating(node))
        r = await node.http.post(f"{API}/pow/phase/validate")
        assert r.json()["pow_status"]["status"] == "VALIDATING"


async def test_a_crashed_poc_session_is_recorded_and_the_node_stops():
    async with running_node(CountingFactory(fail=True)) as (node, _):
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body())

        async def stopped() -> bool:
            return (await node.state())["state"] == "STOPPED"
        await eventually(stopped)

        state = await node.state()
        assert "out of device memory" in state["failure"]
        health = (await node.http.get(f"{API}/health")).json()
        assert health["status"] == "FAILED" and health["state"] == "STOPPED"
        assert "out of device memory" in health["failure"]


# -- PoC validation -------------------------------------------------------------------------

def proof(nonces, dist, block_hash: str = BLOCK) -> bytes:
    return msgspec.json.encode(ProofBatch(
        public_key=KEY, block_hash=block_hash, block_height=10,
        nonces=[int(n) for n in nonces], dist=[float(d) for d in dist], node_id=0))


async def test_validate_answers_the_verdict_and_posts_it_to_the_callback():
    nonces = np.arange(400, dtype=np.uint64)
    dist = true_distances(nonces)
    valid, invalid = nonces[dist < R_TARGET], nonces[dist > R_TARGET + PARAMS.dist_tolerance]
    honest = proof(valid[:100], dist[dist < R_TARGET][:100])
    cheat = proof(np.concatenate([valid[:90], invalid[:10]]), [R_TARGET - 0.01] * 100)

    async with running_node() as (node, callbacks):
        await node.http.post(f"{API}/pow/init/validate", content=node.init_body())

        # When an honest batch and a batch with 10% made-up nonces are validated
        r_honest = await node.http.post(f"{API}/pow/validate", content=honest)
        r_cheat = await node.http.post(f"{API}/pow/validate", content=cheat)

        # Then the answers carry the verdicts
        assert r_honest.status_code == r_cheat.status_code == 200
        v_honest = msgspec.json.decode(r_honest.content, type=ValidatedBatch)
        v_cheat = msgspec.json.decode(r_cheat.content, type=ValidatedBatch)
        assert (v_honest.n_invalid, v_honest.fraud_detected) == (0, False)
        assert (v_cheat.n_invalid, v_cheat.fraud_detected) == (10, True)
        assert v_cheat.r_target == R_TARGET

        # ... and the same verdicts reach {url}/validated
        await callbacks.wait_for(lambda: len(callbacks.validated) == 2)
        assert callbacks.validated == [v_honest, v_cheat]
        assert (await node.pow_status())["validated"] == 2

        # A batch for another block is a conflict with what is loaded, not a crash
        r = await node.http.post(f"{API}/pow/validate",
                                 content=proof(valid[:3], [1.0] * 3, OTHER_BLOCK))
        assert r.status_code == 409
        assert OTHER_BLOCK in r.json()["error"]


async def test_validate_before_init_is_refused():
    async with running_node() as (node, _):
        r = await node.http.post(f"{API}/pow/validate", content=proof([1], [1.0]))
        assert r.status_code == 409
        assert r.json()["state"] == "STOPPED"


# -- bad requests ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed"),
    (b'{"block_hash": "ab"}', "block_hash"),
    (None, "node_id 2 must be below node_count 2"),
    (None, "Object contains unknown field `bogus`"),
])
async def test_a_bad_init_body_is_400_and_changes_nothing(body, message):
    async with running_node() as (node, _):
        if body is None and "node_id" in message:
            body = node.init_body(node_id=2)
        elif body is None:
            body = node.init_body(bogus=1)

        # Given a node generating for one session
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body())
        before = await node.pow_status()

        # When a bad init request arrives
        r = await node.http.post(f"{API}/pow/init/generate", content=body)

        # Then it is a 400 saying what is wrong, and the session goes on
        assert r.status_code == 400
        assert message.lower() in r.json()["error"].lower()
        assert r.json()["error"].startswith("cannot decode PowInitRequest")
        assert await node.state() == {"state": "POW"}
        after = await node.pow_status()
        assert (after["block_hash"], after["block_height"]) == (before["block_hash"], 10)
        assert len(node.factory.builds) <= 1


async def test_a_body_over_the_limit_is_413():
    async with running_node(max_body_bytes=2048) as (node, _):
        r = await node.http.post(f"{API}/pow/validate", content=proof(range(300), [1.0] * 300))
        assert r.status_code == 413
        assert r.json()["error"]


async def test_a_bad_inference_body_is_400_and_nothing_starts():
    async with running_node() as (node, _):
        r = await node.http.post(f"{API}/inference/up", json={"dtype": "float16"})
        assert r.status_code == 400
        assert "model" in r.json()["error"]
        assert await node.state() == {"state": "STOPPED"}
        assert node.backend.models == []


# -- inference and the mode -----------------------------------------------------------------

async def test_poc_is_refused_while_serving_inference_until_stopped():
    async with running_node() as (node, _):
        # Given a node serving inference
        r = await node.http.post(f"{API}/inference/up",
                                 json={"model": "tiny", "dtype": "float16"})
        assert r.status_code == 200 and r.json() == {"status": "OK"}
        assert await node.state() == {"state": "INFERENCE"}

        # When PoC is requested
        r = await node.http.post(f"{API}/pow/init/generate", content=node.init_body())

        # Then it is refused with the reason and nothing of PoC starts
        assert r.status_code == 409
        assert r.json() == {"error": "cannot start PoC: the node is serving inference; "
                                     "POST /api/v1/stop first", "state": "INFERENCE"}
        assert (await node.pow_status())["status"] == "NOT_LOADED"
        assert node.factory.builds == []

        # Inference requests are proxied to the backend meanwhile
        r = await node.http.post("/v1/chat/completions", json={"messages": []})
        assert r.json() == {"path": "/v1/chat/completions", "method": "POST",
                            "body": '{"messages":[]}'}
        assert (await node.http.get("/v1/models")).json()["path"] == "/v1/models"
        r = await node.http.post(f"{API}/inference/replay", json={"tokens": [1, 2]})
        assert r.json() == {"replayed": [1, 2]}

        # After a stop, PoC starts
        await node.http.post(f"{API}/stop")
        assert not node.backend.running
        r = await node.http.post(f"{API}/pow/init/generate", content=node.init_body())
        assert r.status_code == 200


async def test_inference_is_refused_while_running_poc():
    async with running_node() as (node, _):
        await node.http.post(f"{API}/pow/init/generate", content=node.init_body())
        r = await node.http.post(f"{API}/inference/up", json={"model": "tiny"})
        assert r.status_code == 409
        assert r.json()["state"] == "POW"
        assert node.backend.models == []


async def test_proxy_and_replay_without_a_backend_are_refused():
    async with running_node() as (node, _):
        r = await node.http.post("/v1/completions", json={})
        assert r.status_code == 503
        r = await node.http.post(f"{API}/inference/replay", json={"tokens": []})
        assert r.status_code == 409


async def test_a_backend_that_fails_to_start_is_an_error_status():
    async with running_node() as (node, _):
        node.backend.fail_start = "CUDA out of memory"
        r = await node.http.post(f"{API}/inference/up", json={"model": "tiny"})
        assert r.status_code == 500
        assert "CUDA out of memory" in r.json()["error"]
        state = await node.state()
        assert state["state"] == "STOPPED" and "CUDA out of memory" in state["failure"]


async def test_a_backend_that_dies_is_recorded_and_the_node_stops():
    async with running_node() as (node, _):
        await node.http.post(f"{API}/inference/up", json={"model": "tiny"})

        # When the backend process dies on its own
        down = node.backend.down_called
        node.backend.running = False

        # Then the watchdog records it and cleans up, and the node is STOPPED
        await down.wait()
        state = await node.state()
        assert state["state"] == "STOPPED"
        assert state["failure"] == "inference backend exited unexpectedly: exit status -9"
        health = (await node.http.get(f"{API}/health")).json()
        assert (health["status"], health["inference_running"]) == ("FAILED", False)

        # And the next command clears the record
        await node.http.post(f"{API}/inference/up", json={"model": "tiny"})
        assert await node.state() == {"state": "INFERENCE"}


async def test_stop_cancels_an_inference_start_in_progress():
    async with running_node() as (node, _):
        node.backend.block_start = True
        answers: list[httpx.Response] = []

        async def start() -> None:
            answers.append(await node.http.post(f"{API}/inference/up", json={"model": "tiny"}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(start)
            await node.backend.start_began.wait()
            r = await node.http.post(f"{API}/stop")
            assert r.status_code == 200

        assert answers[0].status_code == 409
        assert "cancelled" in answers[0].json()["error"]
        assert await node.state() == {"state": "STOPPED"}
        assert not node.backend.running


async def test_bearer_token_is_required_when_configured():
    async with running_node(auth_token="s3cret") as (node, _):
        r = await node.http.get(f"{API}/state")
        assert r.status_code == 401
        r = await node.http.get(f"{API}/state", headers={"Authorization": "Bearer s3cret"})
        assert r.json() == {"state": "STOPPED"}
