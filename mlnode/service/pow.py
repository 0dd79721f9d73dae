"""The PoC controller: one session of generation and validation for one `PowInitRequest`.

A session builds (or reuses) the PoC model for (params, block hash), then runs two tasks in its
own cancel scope inside the service's nursery:
  * the generator: while the phase is GENERATING, computes the next batch of this node's nonces
    (`mlnode.pow.nonces`) in a worker thread and keeps the valid ones (dist < r_target);
  * the sender: every `send_interval_s` POSTs the kept nonces as one ProofBatch to
    `{url}/generated` and the validation verdicts to `{url}/validated`; a failed POST (no
    answer, 5xx, 401, ...) keeps them for the next round and a delivered one is dropped, so
    nothing is lost or sent twice (unless a POST reached the server but its answer did not
    reach us). A body the receiver rejects as such (400, 413, 422) is dropped and logged:
    resending it would block everything behind it.
One batch is in flight at a time (generation and validation share one compute lock); a stop
cancels the session and waits for the batch in flight, so it takes effect within one batch.

The model is cached across sessions by (params, block hash): re-initialising with the same block
rebuilds nothing; an identical request keeps the running session (its nonce position and
unsent nonces) and only changes the phase. It must never start work outside the given nursery.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable

import httpx
import numpy as np
import trio

from chain.types.codec import to_json
from chain.types.poc import PocParams, PowInitRequest, ProofBatch, ValidatedBatch
from mlnode.pow.nonces import NonceLane, NonceStream
from mlnode.pow.validation import BlockHashMismatch, BlockModel, ModelFactory, validate_batch
from mlnode.service.batch_size import auto_batch_size, free_memory_bytes
from mlnode.service.config import MlNodeConfig
from mlnode.service.schema import PowStatus

log = logging.getLogger(__name__)


class PowPhase(enum.Enum):
    IDLE = "IDLE"
    GENERATING = "GENERATING"
    VALIDATING = "VALIDATING"


class _Post(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"          # no answer, or a server error: the same body goes next round
    REJECTED = "rejected"    # the receiver says the body is wrong: resending cannot help


# Answers that reject the body itself; any other failure is retried.
REJECTED_STATUSES = frozenset({400, 413, 422})


class PowError(Exception):
    """A PoC request this node cannot serve in its current PoC state (HTTP 409)."""


class PowNotRunning(PowError):
    def __init__(self, what: str = "PoC is not running") -> None:
        super().__init__(f"{what}; POST /api/v1/pow/init/validate first")


def default_model_factory(params: PocParams, block_hash: bytes):
    """The fastest implementation this machine has (`mlnode.pow.compute`; imported lazily: it
    pulls in torch)."""
    from mlnode.pow.compute import build_poc_function
    return build_poc_function(params, block_hash)


def _describe(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


class _Session:
    """The state of one init request: phase, model, unsent results and counters."""

    def __init__(self, request: PowInitRequest, phase: PowPhase) -> None:
        self.request = request
        self.block_hash = bytes.fromhex(request.block_hash)
        self.public_key = bytes.fromhex(request.public_key)
        self.url = request.url.rstrip("/") if request.url else None
        self.phase = phase
        self._phase_changed = trio.Event()
        self.scope = trio.CancelScope()
        self.model: BlockModel | None = None
        self.batch_size: int | None = None
        self.model_ready = trio.Event()    # also set when the session ends without a model
        self.done = trio.Event()
        self.pending_nonces: list[int] = []
        self.pending_dist: list[float] = []
        self.outbox: list[ValidatedBatch] = []
        self.checked = self.valid = self.sent = self.rejected = self.validated = 0
        self.last_send_error: str | None = None

    @property
    def key(self) -> tuple[PocParams, bytes]:
        return self.request.params, self.block_hash

    def set_phase(self, phase: PowPhase) -> None:
        self.phase = phase
        self._phase_changed.set()
        self._phase_changed = trio.Event()

    async def wait_for_phase(self, phase: PowPhase) -> None:
        while self.phase is not phase:
            await self._phase_changed.wait()

    def status(self) -> PowStatus:
        if self.model is None:
            name = "LOADING"
        else:
            name = self.phase.value
        return PowStatus(
            status=name, is_model_initialized=self.model is not None, checked=self.checked,
            valid=self.valid, sent=self.sent, rejected=self.rejected,
            pending=len(self.pending_nonces),
            validated=self.validated, pending_validated=len(self.outbox),
            batch_size=self.batch_size, block_hash=self.request.block_hash,
            block_height=self.request.block_height, last_send_error=self.last_send_error)


class PowController:
    """PoC sessions of one ML node; every task runs in `nursery` (the service's)."""

    def __init__(self, nursery: trio.Nursery, config: MlNodeConfig, client: httpx.AsyncClient,
                 *, model_factory: ModelFactory = default_model_factory,
                 on_failure: Callable[[str], None] = lambda reason: None,
                 free_memory: Callable[[], int | None] = free_memory_bytes) -> None:
        self._nursery = nursery
        self._config = config
        self._client = client
        self._factory = model_factory
        self._on_failure = on_failure
        self._free_memory = free_memory
        self._lock = trio.Lock()          # init / phase / stop, one at a time
        self._compute = trio.Lock()       # one batch in flight
        self._session: _Session | None = None
        # The cached model and the (params, block hash) it was built for.
        self._model: BlockModel | None = None
        self._model_key: tuple[PocParams, bytes] | None = None
        self.models_built = 0

    # -- commands -------------------------------------------------------------------------

    async def init(self, request: PowInitRequest, phase: PowPhase) -> PowStatus:
        """Run `request` in `phase`: keep an identical session, else replace it."""
        async with self._lock:
            old = self._session
            if old is not None and old.request == request:
                old.set_phase(phase)
                return old.status()
            self._session = None          # a failure while it ends is not reported
            if old is not None:
                await self._end(old)
            session = _Session(request, phase)
            if self._model_key != session.key:
                self._model = self._model_key = None   # free it before the next is built
            self._session = session
            self._nursery.start_soon(self._run, session)
            return session.status()

    async def set_phase(self, phase: PowPhase) -> PowStatus:
        async with self._lock:
            session = self._require_session()
            session.set_phase(phase)
            return session.status()

    async def stop(self) -> None:
        """End the session (waits for the batch in flight); the model stays cached."""
        async with self._lock:
            session, self._session = self._session, None
            if session is not None:
                await self._end(session)

    def release_model(self) -> None:
        """Drop the cached model (before inference needs the memory)."""
        if self._session is None:
            self._model = self._model_key = None

    async def validate(self, batch: ProofBatch) -> ValidatedBatch:
        """Recompute `batch` with the session's model and queue the verdict for {url}/validated."""
        session = self._require_session()
        if batch.block_hash != session.request.block_hash:
            raise BlockHashMismatch(batch.block_hash, session.request.block_hash)
        await session.model_ready.wait()
        model = session.model
        if model is None:
            raise PowNotRunning("PoC stopped before its model was ready")
        req = session.request
        job = functools.partial(
            validate_batch, model, batch, r_target=req.params.r_target,
            mismatch_rate=req.mismatch_rate, fraud_threshold=req.fraud_threshold,
            dist_tolerance=req.params.dist_tolerance, chunk_size=session.batch_size)
        async with self._compute:
            result = await trio.to_thread.run_sync(job)
        session.validated += 1
        if session.url is not None and self._session is session:
            session.outbox.append(result)
        log.info("validated %d nonces of %s: %d invalid (%d repeated), p=%.3g, fraud=%s",
                 result.n_checked, batch.public_key, result.n_invalid, result.n_duplicates,
                 result.probability_honest, result.fraud_detected)
        return result

    def status(self) -> PowStatus:
        if self._session is None:
            return PowStatus(status="NOT_LOADED", is_model_initialized=False)
        return self._session.status()

    @property
    def running(self) -> bool:
        return self._session is not None

    def _require_session(self) -> _Session:
        if self._session is None:
            raise PowNotRunning()
        return self._session

    async def _end(self, session: _Session) -> None:
        session.scope.cancel()
        await session.done.wait()
        if session.pending_nonces or session.outbox:
            log.warning("PoC session ended with %d valid nonces and %d verdicts undelivered",
                        len(session.pending_nonces), len(session.outbox))

    # -- the session's tasks -------------------------------------------------------------

    async def _run(self, session: _Session) -> None:
        try:
            with session.scope:
                session.model = await self._load(session)
                session.batch_size = self._batch_size(session)
                session.model_ready.set()
                log.info("PoC model ready for block %s; batch size %d",
                         session.request.block_hash, session.batch_size)
                async with trio.open_nursery() as tasks:
                    if session.url is not None:
                        tasks.start_soon(self._send_loop, session)
                    tasks.start_soon(self._generate_loop, session)
        except Exception as e:  # noqa: BLE001 - any crash of PoC work is the session's failure
            log.exception("PoC session failed")
            if self._session is session:
                self._session = None
                self._on_failure(f"PoC failed: {_describe(e)}")
        finally:
            session.model_ready.set()
            session.done.set()

    async def _load(self, session: _Session) -> BlockModel:
        if self._model is not None and self._model_key == session.key:
            return self._model
        build = functools.partial(BlockModel.build, self._factory, *session.key)
        # A stop abandons a build in progress: the thread finishes and its result is dropped.
        model = await trio.to_thread.run_sync(build, abandon_on_cancel=True)
        self.models_built += 1
        self._model, self._model_key = model, session.key
        return model

    def _batch_size(self, session: _Session) -> int:
        chosen = session.request.batch_size or self._config.batch_size
        if chosen is not None:
            return chosen
        return auto_batch_size(session.request.params, self._free_memory(),
                               self._config.max_batch_size)

    async def _generate_loop(self, session: _Session) -> None:
        req = session.request
        stream = NonceStream(NonceLane(req.node_id, req.node_count))
        r_target = req.params.r_target
        assert session.model is not None and session.batch_size is not None
        compute = functools.partial(session.model.distances, session.public_key)
        while True:
            await session.wait_for_phase(PowPhase.GENERATING)
            nonces = stream.take(session.batch_size)
            async with self._compute:
                dist = np.asarray(await trio.to_thread.run_sync(compute, nonces), np.float64)
            valid = dist < r_target
            session.checked += len(nonces)
            session.valid += int(valid.sum())
            if session.url is not None:     # without a callback nobody would take them
                session.pending_nonces.extend(nonces[valid].tolist())
                session.pending_dist.extend(dist[valid].tolist())

    async def _send_loop(self, session: _Session) -> None:
        while True:
            await trio.sleep(self._config.send_interval_s)
            await self._flush(session)

    async def _flush(self, session: _Session) -> None:
        req = session.request
        while session.pending_nonces:
            n = min(len(session.pending_nonces), self._config.max_nonces_per_post)
            batch = ProofBatch(
                public_key=req.public_key, block_hash=req.block_hash,
                block_height=req.block_height, nonces=session.pending_nonces[:n],
                dist=session.pending_dist[:n], node_id=req.node_id)
            outcome = await self._post(session, "generated", batch)
            if outcome is _Post.RETRY:
                return
            # Only the front was sent; the generator may have appended more meanwhile.
            del session.pending_nonces[:n]
            del session.pending_dist[:n]
            if outcome is _Post.DELIVERED:
                session.sent += n
            else:
                session.rejected += n
        while session.outbox:
            outcome = await self._post(session, "validated", session.outbox[0])
            if outcome is _Post.RETRY:
                return
            session.outbox.pop(0)

    async def _post(self, session: _Session, kind: str, body: object) -> _Post:
        url = f"{session.url}/{kind}"
        error: str | None = None
        outcome = _Post.RETRY
        with trio.move_on_after(self._config.callback_timeout_s) as scope:
            try:
                r = await self._client.post(url, content=to_json(body),
                                            headers={"content-type": "application/json"})
            except httpx.HTTPError as e:
                error = f"POST {url}: {type(e).__name__}: {e}"
            else:
                if r.status_code in REJECTED_STATUSES:
                    error = f"POST {url}: HTTP {r.status_code}, dropped: {r.text[:300]}"
                    outcome = _Post.REJECTED
                elif not r.is_success:
                    error = f"POST {url}: HTTP {r.status_code}"
        if scope.cancelled_caught:
            error = f"POST {url}: no answer within {self._config.callback_timeout_s} s"
        if error is None:
            session.last_send_error = None
            return _Post.DELIVERED
        if error != session.last_send_error:
            log.warning("%s%s", error, "" if outcome is _Post.REJECTED else "; will retry")
        session.last_send_error = error
        return outcome
