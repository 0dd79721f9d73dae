"""`Broker`: the host's ML nodes, what each should be doing, what each is doing, and who may use
it now (DESIGN.md section 6; gonka-api-node.md section 5).

Per node the broker keeps the operator's declaration (`NodeSpec`), the admin state, the intended
state (`Target`, from `state.plan` at every `reconcile(stage_info)`, which the per-block driver
calls) and the actual state, probed from the node's `/api/v1/state` (+ `/api/v1/pow/status`
while it runs PoC, + `/v1/models` to learn the served model). One worker task per node makes the
actual state match the intended one, following the ML node's state machine
(mlnode/service/state.py): serving inference and running PoC exclude each other, so the worker
stops the one before starting the other (`POST /api/v1/stop`), and a 409 means "probe again".

A worker is woken by every `reconcile` (so every block) and otherwise polls every
`poll_interval_s`. A probe or command that gets no answer in time marks the node unreachable:
it is leased to nobody, and the next probe that answers reconciles it again. A command that
the node refuses (a failed inference start, ...) is recorded as the node's failure and retried
with backoff. A new target cancels a command in flight for an older one.

`lease(model)` (the `MlNodePool` interface) lends the least busy reachable node that serves
`model` in inference now; `validate_poc(batch)` recomputes a PoC batch on a node in PoC
validation for that block.

Every task lives in the nursery of `run()`; this module must never leave a node half-commanded
without recording it, or lend a node that is not serving the model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import msgspec
import trio

from api.broker.mlnode_client import MlNodeClient, MlNodeError, Refused, Unreachable
from api.broker.state import (
    POC_STAGES,
    AdminState,
    Goal,
    Lanes,
    NodeSpec,
    StageInfo,
    Target,
    fix_lanes,
    plan,
)
from api.mlnodes import MlNodeLease, NoMlNode
from chain.types.poc import ProofBatch, ValidatedBatch
from mlnode.service.schema import PowStatus

log = logging.getLogger(__name__)


class BrokerError(Exception):
    pass


class UnknownNode(BrokerError, KeyError):
    def __init__(self, node_id: str) -> None:
        super().__init__(f"node not found: {node_id}")
        self.node_id = node_id

    def __str__(self) -> str:
        return self.args[0]


class DuplicateNode(BrokerError, ValueError):
    def __init__(self, node_id: str) -> None:
        super().__init__(f"a node with id {node_id} is already registered")
        self.node_id = node_id


class NoPocValidator(NoMlNode):
    """No node of this host runs PoC validation for the block (the validator cannot judge)."""

    def __init__(self, block_hash: str) -> None:
        super().__init__("poc-validation", f"no ML node validates PoC of block {block_hash}")
        self.block_hash = block_hash


class NodeView(msgspec.Struct, frozen=True):
    """One node as the admin API lists it."""

    node_id: str
    url: str
    models: tuple[str, ...]
    max_concurrent: int
    enabled: bool              # the operator's wish
    active: bool               # in force now (a change waits for the next PoC start)
    intended: str | None       # Goal value, None before the first reconcile
    intended_detail: str | None
    actual: str | None         # the ML node's mode (STOPPED, POW, INFERENCE); None: unknown
    pow_status: str | None
    served_model: str | None
    reachable: bool | None     # None: not probed yet
    in_flight: int
    failure: str | None


_POW_STATUS = {Goal.POC_GENERATE: "GENERATING", Goal.POC_VALIDATE: "VALIDATING"}


@dataclass
class _Node:
    spec: NodeSpec
    admin: AdminState
    client: MlNodeClient | None = None
    target: Target | None = None
    mode: str | None = None
    pow: PowStatus | None = None
    served_model: str | None = None
    reachable: bool | None = None
    failure: str | None = None
    in_flight: int = 0
    applied: Target | None = None       # the last target whose commands all succeeded
    wake: trio.Event = field(default_factory=trio.Event)
    worker: trio.CancelScope = field(default_factory=trio.CancelScope)
    command: trio.CancelScope | None = None
    command_target: Target | None = None
    failures: int = 0
    retry_at: float = 0.0

    def view(self) -> NodeView:
        return NodeView(
            node_id=self.spec.node_id, url=self.spec.url, models=self.spec.models,
            max_concurrent=self.spec.max_concurrent, enabled=self.admin.enabled,
            active=self.admin.active,
            intended=self.target.goal.value if self.target else None,
            intended_detail=self.target.describe() if self.target else None,
            actual=self.mode, pow_status=self.pow.status if self.pow else None,
            served_model=self.served_model, reachable=self.reachable,
            in_flight=self.in_flight, failure=self.failure)


class Broker:
    def __init__(self, nodes: Iterable[NodeSpec] = (), *,
                 http: httpx.AsyncClient | None = None,
                 probe_timeout_s: float = 5.0, command_timeout_s: float = 120.0,
                 inference_up_timeout_s: float = 1800.0, validate_timeout_s: float = 600.0,
                 poll_interval_s: float = 10.0, retry_delay_s: float = 1.0,
                 max_retry_delay_s: float = 60.0) -> None:
        self._http = http
        self.probe_timeout_s = probe_timeout_s
        self.command_timeout_s = command_timeout_s
        self.inference_up_timeout_s = inference_up_timeout_s
        self.validate_timeout_s = validate_timeout_s
        self.poll_interval_s = poll_interval_s
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s
        self._nodes: dict[str, _Node] = {}
        self._info: StageInfo | None = None
        self._poc_epoch: int | None = None
        self._lanes: Lanes | None = None
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        for spec in nodes:
            self.add(spec)

    # -- the service ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Broker] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Reconcile the nodes until cancelled."""
        own = self._http is None
        http = self._http or httpx.AsyncClient(timeout=None)
        try:
            async with trio.open_nursery() as nursery:
                self._http, self._nursery = http, nursery
                for node in self._nodes.values():
                    self._start_worker(node)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None
            if own:
                with trio.CancelScope(shield=True):
                    await http.aclose()
                self._http = None

    def _start_worker(self, node: _Node) -> None:
        assert self._nursery is not None and self._http is not None
        node.client = MlNodeClient(self._http, node.spec.url)
        self._nursery.start_soon(self._worker, node)

    # -- the per-block driver's side ------------------------------------------------------------

    def reconcile(self, info: StageInfo) -> None:
        """Set every node's target for the chain at `info` and wake the workers (which probe
        every node, so a node that came back is found within a block)."""
        poc_started = (info.stage in POC_STAGES and info.poc is not None
                       and info.poc.epoch != self._poc_epoch)
        for node in self._nodes.values():
            node.admin.applied(info.stage, poc_started)
        if poc_started:
            assert info.poc is not None
            self._poc_epoch = info.poc.epoch
            self._lanes = fix_lanes(info.poc.epoch, (
                n.spec.node_id for n in self._nodes.values()
                if n.admin.active and n.spec.node_id not in info.kept_nodes))
            log.info("PoC of epoch %d: %d nodes generate, lanes %s", info.poc.epoch,
                     self._lanes.count, dict(self._lanes.lane_of))
        self._info = info
        self._replan()

    def _replan(self) -> None:
        if self._info is not None:
            targets = plan(self._info, {i: n.spec for i, n in self._nodes.items()},
                           {i: n.admin.active for i, n in self._nodes.items()}, self._lanes)
            for node_id, target in targets.items():
                self._set_target(self._nodes[node_id], target)
        for node in self._nodes.values():
            node.wake.set()
        self._notify()

    def _set_target(self, node: _Node, target: Target) -> None:
        if target == node.target:
            return
        log.info("node %s: %s -> %s", node.spec.node_id,
                 node.target.describe() if node.target else "none", target.describe())
        node.target = target
        node.retry_at = 0.0
        node.failures = 0
        if node.command is not None and node.command_target != target:
            node.command.cancel()

    # -- leases ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def lease(self, model: str) -> AsyncIterator[MlNodeLease]:
        """The least busy node serving `model` now; NoMlNode if none."""
        node = self._pick(model)
        node.in_flight += 1
        self._notify()
        try:
            yield MlNodeLease(node_id=node.spec.node_id, url=node.spec.url)
        finally:
            node.in_flight -= 1
            self._notify()

    def _pick(self, model: str) -> _Node:
        serving = [n for n in self._nodes.values()
                   if n.reachable and n.target is not None and n.target.goal is Goal.INFERENCE
                   and n.target.model == model and n.mode == "INFERENCE"
                   and n.served_model == model]
        free = [n for n in serving if n.in_flight < n.spec.max_concurrent]
        if not free:
            declared = any(model in n.spec.models for n in self._nodes.values())
            reason = ("every node serving it is at its max_concurrent" if serving
                      else "none is serving it now" if declared
                      else "no node declares it")
            raise NoMlNode(model, reason)
        return min(free, key=lambda n: (n.in_flight, n.spec.node_id))

    async def validate_poc(self, batch: ProofBatch) -> ValidatedBatch:
        """Recompute `batch` on the least busy node validating PoC of its block.

        Raises NoPocValidator when none does, MlNodeError when the node fails the call."""
        candidates = [n for n in self._nodes.values()
                      if n.reachable and n.target is not None
                      and n.target.goal is Goal.POC_VALIDATE and n.mode == "POW"
                      and n.pow is not None and n.pow.block_hash == batch.block_hash
                      and n.client is not None]
        if not candidates:
            raise NoPocValidator(batch.block_hash)
        node = min(candidates, key=lambda n: (n.in_flight, n.spec.node_id))
        node.in_flight += 1
        try:
            assert node.client is not None
            with trio.move_on_after(self.validate_timeout_s):
                return await node.client.validate(batch)
            raise Unreachable(node.spec.url, f"no verdict within {self.validate_timeout_s} s")
        finally:
            node.in_flight -= 1

    # -- admin ----------------------------------------------------------------------------------

    def add(self, spec: NodeSpec) -> NodeView:
        """Register a node. It is active at once unless a PoC runs (then from the next
        inference stage); DuplicateNode if the id is taken."""
        if spec.node_id in self._nodes:
            raise DuplicateNode(spec.node_id)
        in_poc = self._info is not None and self._info.stage in POC_STAGES
        node = _Node(spec, AdminState(enabled=spec.enabled, active=spec.enabled and not in_poc))
        self._nodes[spec.node_id] = node
        if self._nursery is not None:
            self._start_worker(node)
        self._replan()
        return node.view()

    def add_many(self, specs: Iterable[NodeSpec]) -> tuple[list[NodeView], list[BrokerError]]:
        """Add each; (added, refusals) - one refusal does not stop the others."""
        added, refused = [], []
        for spec in specs:
            try:
                added.append(self.add(spec))
            except BrokerError as e:
                refused.append(e)
        return added, refused

    def remove(self, node_id: str) -> NodeView:
        """Forget a node and stop reconciling it (it is not commanded to stop; leases in
        flight finish on it)."""
        node = self._node(node_id)
        node.worker.cancel()
        del self._nodes[node_id]
        self._replan()
        return node.view()

    def set_enabled(self, node_id: str, enabled: bool) -> NodeView:
        """The operator's switch: takes effect at the next PoC start (an enable also at once
        while the chain is in its inference stage)."""
        node = self._node(node_id)
        node.admin.enabled = enabled
        if self._info is None or (enabled and self._info.stage == "inference"):
            node.admin.active = enabled
        self._replan()
        return node.view()

    def enable(self, node_id: str) -> NodeView:
        return self.set_enabled(node_id, True)

    def disable(self, node_id: str) -> NodeView:
        return self.set_enabled(node_id, False)

    def nodes(self) -> list[NodeView]:
        return [n.view() for _, n in sorted(self._nodes.items())]

    def node(self, node_id: str) -> NodeView:
        return self._node(node_id).view()

    def _node(self, node_id: str) -> _Node:
        node = self._nodes.get(node_id)
        if node is None:
            raise UnknownNode(node_id)
        return node

    async def wait_for(self, predicate: Callable[[list[NodeView]], bool]) -> list[NodeView]:
        """Return the node list once `predicate` holds for it."""
        while True:
            changed = self._changed
            views = self.nodes()
            if predicate(views):
                return views
            await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- the worker -----------------------------------------------------------------------------

    async def _worker(self, node: _Node) -> None:
        with node.worker:
            while True:
                node.wake = wake = trio.Event()
                await self._step(node)
                delay = self.poll_interval_s
                if node.retry_at:
                    delay = min(delay, max(node.retry_at - trio.current_time(), 0.0))
                with trio.move_on_after(delay):
                    await wake.wait()

    async def _step(self, node: _Node) -> None:
        if not await self._probe(node):
            return
        target = node.target
        if target is None or self._done(node, target):
            if target is not None and node.applied != target:
                node.applied = target
                self._notify()
            return
        if trio.current_time() < node.retry_at:
            return
        with trio.CancelScope() as scope:
            node.command, node.command_target = scope, target
            try:
                await self._apply(node, target)
            except Unreachable as e:
                self._unreachable(node, e.reason)
                return
            except trio.TooSlowError:
                self._unreachable(node, f"{target.describe()} did not finish in time")
                return
            except Refused as e:
                # A 409 means the node's mode moved under us: probe and try again (backoff
                # keeps a node that keeps refusing from being hammered every block).
                self._failed(node, str(e))
                return
            finally:
                node.command = node.command_target = None
            node.applied, node.failure, node.failures, node.retry_at = target, None, 0, 0.0
            log.info("node %s: now %s", node.spec.node_id, target.describe())
        if scope.cancelled_caught:
            log.info("node %s: %s abandoned for a newer target", node.spec.node_id,
                     target.describe())
        await self._probe(node)

    async def _probe(self, node: _Node) -> bool:
        """Refresh the actual state; False if the node did not answer."""
        assert node.client is not None
        try:
            with trio.fail_after(self.probe_timeout_s):
                state = await node.client.state()
                pow_status = await node.client.pow_status() if state.state == "POW" else None
                served = node.served_model if state.state == "INFERENCE" else None
                if state.state == "INFERENCE" and served is None:
                    models = await node.client.served_models()
                    served = models[0] if models else None
        except trio.TooSlowError:
            self._unreachable(node, f"no answer within {self.probe_timeout_s} s")
            return False
        except Unreachable as e:
            self._unreachable(node, e.reason)
            return False
        except Refused as e:
            if e.path == "/v1/models":     # serving, but the model is not known yet
                served = None
                pow_status = None
            else:
                self._failed(node, str(e))
                return False
        if node.reachable is False:
            log.info("node %s answers again (%s)", node.spec.node_id, state.state)
        node.reachable, node.mode, node.pow, node.served_model = (True, state.state, pow_status,
                                                                  served)
        if state.failure and node.failure != state.failure:
            node.failure = state.failure
        self._notify()
        return True

    def _done(self, node: _Node, target: Target) -> bool:
        if target.goal is Goal.STOPPED:
            return node.mode == "STOPPED"
        if target.goal is Goal.INFERENCE:
            return node.mode == "INFERENCE" and node.served_model == target.model
        assert target.pow is not None
        pow_status = node.pow
        if node.mode != "POW" or pow_status is None:
            return False
        if (pow_status.block_hash != target.pow.block_hash
                or pow_status.block_height != target.pow.block_height):
            return False
        if pow_status.status == _POW_STATUS[target.goal]:
            return True
        # Building the model: the phase is not visible yet; done if we asked for this one.
        return pow_status.status == "LOADING" and node.applied == target

    async def _apply(self, node: _Node, target: Target) -> None:
        client = node.client
        assert client is not None
        mode = node.mode
        with trio.fail_after(self.command_timeout_s):
            if target.goal is Goal.STOPPED:
                await client.stop()
                return
            if (mode == "POW" and target.goal is Goal.INFERENCE) or (
                    mode == "INFERENCE" and target.goal is not Goal.INFERENCE):
                await client.stop()
            if target.goal is not Goal.INFERENCE:
                assert target.pow is not None
                await client.pow_init(target.pow, validate=target.goal is Goal.POC_VALIDATE)
                return
        assert target.model is not None
        node.served_model = None
        with trio.fail_after(self.inference_up_timeout_s):
            await client.inference_up(target.model)
        node.served_model = target.model

    def _unreachable(self, node: _Node, reason: str) -> None:
        if node.reachable is not False:
            log.warning("node %s is unreachable: %s", node.spec.node_id, reason)
        node.reachable = False
        node.mode = node.pow = None
        self._notify()

    def _failed(self, node: _Node, reason: str) -> None:
        node.failure = reason
        node.failures += 1
        delay = min(self.retry_delay_s * 2 ** (node.failures - 1), self.max_retry_delay_s)
        node.retry_at = trio.current_time() + delay
        log.warning("node %s: %s; retrying in %.1f s", node.spec.node_id, reason, delay)
        self._notify()


__all__ = ["Broker", "BrokerError", "DuplicateNode", "MlNodeError", "NoPocValidator",
           "NodeView", "UnknownNode"]
