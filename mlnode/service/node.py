"""`MlNode`: the ML node's commands, carried out against its mode (`mlnode.service.state`).

Each command first asks the state table whether the current mode allows it (a refusal is a
`Conflict`, HTTP 409, and changes nothing), then takes the command lock so that effects happen
one command at a time, in arrival order, and applies the transition. The one exception is a
stop: it also cancels an inference start in progress (which can take minutes) rather than wait
behind it. A command that was waiting for the lock when a stop arrived is refused as
superseded. A watchdog task checks the inference backend; a dead or unresponsive backend, or a
crashed PoC session, returns the node to STOPPED with the failure recorded.

Every task runs in the nursery given to the constructor; the owner cancels it to shut down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from chain.types.poc import PowInitRequest, ProofBatch, ValidatedBatch
from mlnode.pow.validation import ModelFactory
from mlnode.service.config import MlNodeConfig
from mlnode.service.inference import InferenceBackend
from mlnode.service.pow import PowController, PowPhase, default_model_factory
from mlnode.service.schema import InferenceUpRequest, PowStatus
from mlnode.service.state import Action, Conflict, NodeMode, NodeStatus, transition

log = logging.getLogger(__name__)

# How long the health check of the backend may take before it counts as failed.
HEALTH_TIMEOUT_S = 10.0
# How long shutting down may wait for the backend process to stop.
CLOSE_TIMEOUT_S = 30.0


class BackendError(Exception):
    """The inference backend failed a request (HTTP `status`)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class InferenceStartFailed(BackendError):
    def __init__(self, message: str) -> None:
        super().__init__(f"inference failed to start: {message}", status=500)


class MlNode:
    def __init__(self, nursery: trio.Nursery, config: MlNodeConfig, backend: InferenceBackend,
                 client: httpx.AsyncClient, *,
                 model_factory: ModelFactory = default_model_factory) -> None:
        self.config = config
        self.backend = backend
        self._nursery = nursery
        self._status = NodeStatus()
        self._lock = trio.Lock()
        self._stops = 0
        self._starting: trio.CancelScope | None = None
        self.pow = PowController(nursery, config, client, model_factory=model_factory,
                                 on_failure=self._pow_failed)

    def start(self) -> None:
        """Start the watchdog in the node's nursery."""
        self._nursery.start_soon(self._watchdog)

    # -- state ----------------------------------------------------------------------------

    @property
    def status(self) -> NodeStatus:
        return self._status

    @property
    def mode(self) -> NodeMode:
        return self._status.mode

    def check(self, action: Action) -> None:
        """Raise Conflict if the current mode refuses `action`; changes nothing."""
        transition(self._status, action)

    def _apply(self, action: Action, failure: str | None = None) -> None:
        before = self._status
        self._status = transition(before, action, failure)
        if self._status.failure and self._status.failure != before.failure:
            log.error("%s; node is %s", self._status.failure, self._status.mode.value)

    @asynccontextmanager
    async def _command(self, action: Action) -> AsyncIterator[None]:
        """Check, wait for the lock, check again (the mode may have changed), apply."""
        self.check(action)
        stops = self._stops
        async with self._lock:
            if self._stops != stops and action is not Action.STOP:
                raise Conflict(f"cannot {action.value}: a stop arrived while it was waiting",
                               self.mode)
            self._apply(action)
            yield

    def _pow_failed(self, reason: str) -> None:
        self._apply(Action.POW_FAILED, reason)

    # -- commands -------------------------------------------------------------------------

    async def stop(self) -> None:
        """POST /stop: whatever runs stops; the node is STOPPED when this returns."""
        self._stops += 1
        if self._starting is not None:
            self._starting.cancel()
        async with self._command(Action.STOP):
            await self.pow.stop()
            await self.backend.down()

    async def start_pow(self, request: PowInitRequest, phase: PowPhase) -> PowStatus:
        async with self._command(Action.START_POW):
            return await self.pow.init(request, phase)

    async def pow_phase(self, phase: PowPhase) -> PowStatus:
        async with self._command(Action.POW_COMMAND):
            return await self.pow.set_phase(phase)

    async def stop_pow(self) -> PowStatus:
        async with self._command(Action.STOP_POW):
            await self.pow.stop()
            return self.pow.status()

    async def validate(self, batch: ProofBatch) -> ValidatedBatch:
        # No command lock: validation is long and changes no mode; the controller serialises
        # it with generation on its compute lock.
        self.check(Action.POW_COMMAND)
        return await self.pow.validate(batch)

    async def inference_up(self, request: InferenceUpRequest) -> None:
        async with self._command(Action.START_INFERENCE):
            # The scope opens before the first checkpoint: a stop from now on cancels it.
            with trio.CancelScope() as scope:
                self._starting = scope
                try:
                    await self.pow.stop()
                    self.pow.release_model()   # vLLM needs the memory the PoC model holds
                    if self.backend.is_running():
                        await self.backend.down()
                    await self.backend.up(request.model, request.dtype,
                                          list(request.additional_args),
                                          request.served_model_name)
                except Exception as e:  # noqa: BLE001 - the backend's errors are its own types
                    reason = f"{type(e).__name__}: {e}"
                    self._apply(Action.INFERENCE_FAILED, f"inference failed to start: {reason}")
                    with trio.CancelScope(shield=True):
                        await self.backend.down()
                    raise InferenceStartFailed(reason) from e
                finally:
                    self._starting = None
            if scope.cancelled_caught:
                with trio.CancelScope(shield=True):
                    await self.backend.down()
                raise Conflict("inference start was cancelled by POST /api/v1/stop", self.mode)
            log.info("serving %s", request.model)

    async def inference_down(self) -> None:
        async with self._command(Action.STOP_INFERENCE):
            await self.backend.down()

    async def replay(self, request: Any) -> Any:
        self.check(Action.INFERENCE_COMMAND)
        try:
            return await self.backend.replay(request)
        except Exception as e:  # noqa: BLE001 - reported to the caller as a backend failure
            status = getattr(e, "status", 502)
            raise BackendError(f"inference replay failed: {e}",
                               status if isinstance(status, int) and 400 <= status < 600
                               else 502) from e

    # -- watchdog -------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        strikes = 0
        while True:
            await trio.sleep(self.config.watchdog_interval_s)
            if self.mode is not NodeMode.INFERENCE or self._lock.locked():
                strikes = 0             # not serving, or a command is changing what runs
                continue
            if not self.backend.is_running():
                reason = ("inference backend exited unexpectedly: "
                          f"{self.backend.describe_exit()}")
            else:
                healthy = False
                with trio.move_on_after(HEALTH_TIMEOUT_S):
                    healthy = await self.backend.healthy()
                strikes = 0 if healthy else strikes + 1
                if strikes < self.config.unhealthy_strikes:
                    continue
                reason = (f"inference backend failed {strikes} health checks in a row")
            strikes = 0
            async with self._lock:
                if self.mode is NodeMode.INFERENCE:
                    self._apply(Action.INFERENCE_FAILED, reason)
                    await self.backend.down()

    async def close(self) -> None:
        """On shutdown: stop the backend process (shielded, bounded)."""
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            await self.backend.aclose()
