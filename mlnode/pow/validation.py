"""Validation of a claimed `ProofBatch`: recompute every nonce and run the fraud test.

A nonce fails when (SPEC.md section 7)
  * its recomputed distance is above r_target + dist_tolerance (conforming implementations differ
    by ~5e-5; the reference has no tolerance; NaN also fails), or
  * its claimed distance is not below r_target (the reference asserts and crashes; a claim that
    is not a valid nonce by its own account cannot count), or
  * it repeats an earlier nonce of the batch (the reference does not check: one valid nonce sent
    2000 times would validate; weight must not be inflatable by repetition).
Claimed and recomputed distances are not compared otherwise: only the threshold crossing counts.

Pure: the PoC function is passed in; no I/O, no clock, no threads (the caller runs this in one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from chain.types.poc import PocParams, ProofBatch, ValidatedBatch
from chain.types.poc_fraud import fraud_test


class PocFunction(Protocol):
    """The PoC function of one block hash (`mlnode.pow.model.PocModel` and faster kernels)."""

    @property
    def params(self) -> PocParams: ...

    def distances(self, public_key: bytes, nonces: np.ndarray) -> np.ndarray:
        """float64 distances of uint64 `nonces` for `public_key`; valid iff < r_target."""
        ...


# (params, block hash) -> the PoC function; `PocModel.build` or a faster implementation.
ModelFactory = Callable[[PocParams, bytes], PocFunction]


@dataclass(frozen=True)
class BlockModel:
    """A PoC function together with the block hash it was built for."""

    function: PocFunction
    block_hash: bytes

    @classmethod
    def build(cls, factory: ModelFactory, params: PocParams, block_hash: bytes) -> BlockModel:
        return cls(factory(params, block_hash), block_hash)

    @property
    def params(self) -> PocParams:
        return self.function.params

    def distances(self, public_key: bytes, nonces: np.ndarray) -> np.ndarray:
        return self.function.distances(public_key, nonces)


class ValidationError(ValueError):
    """A batch that cannot be validated by this model."""


class BlockHashMismatch(ValidationError):
    """The batch was made for another block than the loaded model's."""

    def __init__(self, batch_hash: str, model_hash: str) -> None:
        super().__init__(f"the batch is for block hash {batch_hash} but the PoC model is built "
                         f"for {model_hash}")
        self.batch_hash = batch_hash
        self.model_hash = model_hash


def repeated_mask(nonces: np.ndarray) -> np.ndarray:
    """True at every position whose nonce occurred earlier in `nonces`."""
    repeated = np.ones(len(nonces), dtype=bool)
    _, first = np.unique(nonces, return_index=True)
    repeated[first] = False
    return repeated


def validate_batch(model: BlockModel, batch: ProofBatch, *, r_target: float,
                   mismatch_rate: float, fraud_threshold: float, dist_tolerance: float,
                   chunk_size: int | None = None) -> ValidatedBatch:
    """Recompute `batch` with its public key and judge it (module docstring for the rules).

    `chunk_size` bounds how many nonces one `distances` call gets (memory); None: all at once.
    Raises BlockHashMismatch when the batch is for another block than `model`.
    """
    if bytes.fromhex(batch.block_hash) != model.block_hash:
        raise BlockHashMismatch(batch.block_hash, model.block_hash.hex())
    nonces = np.asarray(batch.nonces, dtype=np.uint64)
    claimed = np.asarray(batch.dist, dtype=np.float64)
    repeated = repeated_mask(nonces)

    # Each distinct nonce is computed once; repeats take the first occurrence's value.
    unique, inverse = np.unique(nonces, return_inverse=True)
    public_key = bytes.fromhex(batch.public_key)
    step = chunk_size or max(len(unique), 1)
    parts = [np.asarray(model.distances(public_key, unique[i:i + step]), dtype=np.float64)
             for i in range(0, len(unique), step)]
    recomputed = (np.concatenate(parts) if parts else np.zeros(0))[inverse]

    with np.errstate(invalid="ignore"):
        bad_recomputed = ~(recomputed <= r_target + dist_tolerance)
        bad_claim = ~(claimed < r_target)
    failed = bad_recomputed | bad_claim | repeated
    n_checked, n_invalid = len(nonces), int(failed.sum())
    verdict = fraud_test(n_checked, n_invalid, mismatch_rate, fraud_threshold)
    return ValidatedBatch(
        public_key=batch.public_key,
        block_hash=batch.block_hash,
        block_height=batch.block_height,
        nonces=list(batch.nonces),
        dist=recomputed.tolist(),
        received_dist=list(batch.dist),
        node_id=batch.node_id,
        r_target=r_target,
        dist_tolerance=dist_tolerance,
        fraud_threshold=fraud_threshold,
        mismatch_rate=mismatch_rate,
        n_checked=n_checked,
        n_invalid=n_invalid,
        n_duplicates=int(repeated.sum()),
        probability_honest=verdict.p_value,
        fraud_detected=verdict.fraud,
    )
