"""PoC without a model: a BLAKE3-defined distance per (block hash, public key, nonce), and the
mock's generator, which finds exactly the scripted number of valid nonces per batch.

`MockPocFunction` has the interface of the real PoC function (`mlnode.pow.validation.
PocFunction`), so the real PoC controller validates with it unchanged: a mock validator's
recompute agrees with an honest mock generator's distances bit for bit. Half of all nonces are
valid (distance = 2 * r_target * u, u uniform in [0, 1) from the hash).

`MockPowController` is the real controller (`mlnode.service.pow.PowController`: sessions, phases,
callbacks with retries, validation, status) with only its generation loop replaced: instead of
`batch_size` nonces per forward pass it scans its nonce lane until it has `weight_per_batch`
nonces to claim (`poc_fraud` of them made up, `poc_duplicates` of them repeats of valid ones
already claimed), pauses `batch_interval_s`, and idles once the session's `weight` is reached.
While the script says the node has disappeared, it finds nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import blake3
import httpx
import numpy as np
import trio

from chain.types.poc import PocParams
from mlnode.pow.nonces import NonceLane
from mlnode.pow.validation import BlockModel
from mlnode.service.config import MlNodeConfig
from mlnode.service.pow import PowController, PowPhase
from testermint_py.mock_mlnode.script import MockScript
from testermint_py.mock_mlnode.state import ScriptHolder

if TYPE_CHECKING:
    from mlnode.service.pow import _Session

_DOMAIN = b"gonka-mock-poc-v1\x00"
# A made-up claim for an invalid nonce: plausibly below r_target.
FRAUD_CLAIM_FRACTION = 0.9
# Nonces scanned per step while looking for valid (or invalid) ones.
SCAN_CHUNK = 1024
# Valid nonces of a session kept to repeat (poc_duplicates).
REPEAT_POOL = 1 << 16


class MockPocFunction:
    """The mock PoC function of one block: `MockPocFunction(params, block_hash)` is a
    `ModelFactory`."""

    def __init__(self, params: PocParams, block_hash: bytes) -> None:
        self._params = params
        self._block_hash = block_hash

    @property
    def params(self) -> PocParams:
        return self._params

    def distances(self, public_key: bytes, nonces: np.ndarray) -> np.ndarray:
        prefix = blake3.blake3(_DOMAIN + self._block_hash + public_key)
        scale = 2.0 * self._params.r_target / 2.0**64
        out = np.empty(len(nonces), dtype=np.float64)
        for i, nonce in enumerate(np.asarray(nonces, dtype=np.uint64).tolist()):
            h = prefix.copy()
            h.update(int(nonce).to_bytes(8, "little"))
            out[i] = int.from_bytes(h.digest(length=8), "little") * scale
        return out


@dataclass(frozen=True)
class FoundBatch:
    valid: list[tuple[int, float]]      # (nonce, distance), valid, in lane order
    fraud: list[tuple[int, float]]      # (nonce, made-up distance), invalid, in lane order
    checked: int
    next_k: int


def find_batch(model: BlockModel, public_key: bytes, lane: NonceLane, start_k: int,
               n_valid: int, n_fraud: int) -> FoundBatch:
    """From lane position `start_k` on: the first `n_valid` valid nonces with their distances,
    and `n_fraud` invalid ones with made-up distances below r_target. Pure (the function is
    given)."""
    params = model.params
    honest_limit = params.r_target
    fraud_floor = params.r_target + params.dist_tolerance
    if n_fraud and fraud_floor >= 2.0 * params.r_target:
        raise ValueError(f"r_target {params.r_target} leaves no nonce invalid enough to fake")
    valid: list[tuple[int, float]] = []
    fraud: list[tuple[int, float]] = []
    k = start_k
    while len(valid) < n_valid or len(fraud) < n_fraud:
        nonces = lane.batch(k, SCAN_CHUNK)
        dist = model.distances(public_key, nonces)
        for nonce, d in zip(nonces.tolist(), dist.tolist(), strict=True):
            k += 1
            if len(valid) < n_valid and d < honest_limit:
                valid.append((nonce, d))
            elif len(fraud) < n_fraud and d > fraud_floor:
                fraud.append((nonce, honest_limit * FRAUD_CLAIM_FRACTION))
            if len(valid) == n_valid and len(fraud) == n_fraud:
                break
    return FoundBatch(valid, fraud, k - start_k, k)


def split_claims(want: int, script: MockScript, can_repeat: bool) -> tuple[int, int, int]:
    """(fresh valid, made up, repeated) nonces of a batch claiming `want`, as `script` says;
    `can_repeat`: the session has claimed a valid nonce before this batch."""
    n_fraud = round(want * script.poc_fraud)
    n_repeat = min(round(want * script.poc_duplicates), want - n_fraud)
    if not can_repeat and n_repeat == want - n_fraud and n_repeat:
        n_repeat -= 1               # nothing to repeat yet: claim one fresh valid nonce first
    return want - n_fraud - n_repeat, n_fraud, n_repeat


@dataclass
class ClaimedNonces:
    """The valid nonces a session has claimed (its first REPEAT_POOL), which repeats come from
    in turn."""

    pool: list[tuple[int, float]] = field(default_factory=list)
    next_repeat: int = 0

    def claims(self, found: FoundBatch, n_repeat: int) -> tuple[list[int], list[float]]:
        """A batch's claimed (nonces, distances), sorted by nonce: `found`'s valid and made-up
        ones, and `n_repeat` repeats of valid ones claimed so far (this batch's included), taken
        in turn from the session's first: within the first batch, then across batches."""
        self.pool.extend(found.valid[:REPEAT_POOL - len(self.pool)])
        repeats = []
        if n_repeat:
            if not self.pool:
                raise ValueError("no valid nonce claimed yet to repeat")
            for i in range(self.next_repeat, self.next_repeat + n_repeat):
                repeats.append(self.pool[i % len(self.pool)])
            self.next_repeat = (self.next_repeat + n_repeat) % len(self.pool)
        picked = sorted(found.valid + found.fraud + repeats)
        return [n for n, _ in picked], [d for _, d in picked]


class MockPowController(PowController):
    def __init__(self, nursery: trio.Nursery, config: MlNodeConfig, client: httpx.AsyncClient,
                 script: ScriptHolder, **kwargs) -> None:
        super().__init__(nursery, config, client, model_factory=MockPocFunction,
                         free_memory=lambda: None, **kwargs)
        self._script = script

    async def _generate_loop(self, session: _Session) -> None:
        req = session.request
        lane = NonceLane(req.node_id, req.node_count)
        assert session.model is not None
        next_k = found = 0
        claimed = ClaimedNonces()
        while True:
            await session.wait_for_phase(PowPhase.GENERATING)
            script = self._script.current
            if script.disappeared:
                await self._script.wait_changed()
                continue
            want = script.weight_per_batch
            if script.weight is not None:
                want = min(want, script.weight - found)
            if want <= 0:               # the session's weight is reached: idle until rescripted
                await self._script.wait_changed()
                continue
            n_valid, n_fraud, n_repeat = split_claims(want, script, bool(claimed.pool))
            job = functools.partial(find_batch, session.model, session.public_key, lane, next_k,
                                    n_valid, n_fraud)
            async with self._compute:
                batch = await trio.to_thread.run_sync(job)
            nonces, dist = claimed.claims(batch, n_repeat)
            next_k = batch.next_k
            found += want
            session.checked += batch.checked
            session.valid += want
            if session.url is not None:     # without a callback nobody would take them
                session.pending_nonces.extend(nonces)
                session.pending_dist.extend(dist)
            await trio.sleep(script.batch_interval_s)
