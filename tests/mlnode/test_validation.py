"""Validation of claimed batches with the real PoC function (TEST_PARAMS): honest batches pass,
made-up, repeated and out-of-range claims are counted as failures, foreign blocks are refused."""

from __future__ import annotations

import numpy as np
import pytest

from chain.types.poc import DEFAULT_FRAUD_THRESHOLD, DEFAULT_MISMATCH_RATE, TEST_PARAMS, ProofBatch
from mlnode.pow.model import PocModel
from mlnode.pow.validation import BlockHashMismatch, BlockModel, validate_batch

BLOCK = bytes(range(32))
KEY = "02" + "11" * 32
N = 2000


@pytest.fixture(scope="module")
def model() -> BlockModel:
    return BlockModel.build(PocModel.build, TEST_PARAMS, BLOCK)


@pytest.fixture(scope="module")
def computed(model) -> tuple[np.ndarray, np.ndarray, float]:
    """Nonces 0..N-1, their true distances, and an r_target that makes ~30% of them valid."""
    nonces = np.arange(N, dtype=np.uint64)
    dist = model.distances(bytes.fromhex(KEY), nonces)
    r_target = float(np.quantile(dist, 0.3))
    return nonces, dist, r_target


def batch(nonces, dist, block_hash: bytes = BLOCK) -> ProofBatch:
    return ProofBatch(public_key=KEY, block_hash=block_hash.hex(), block_height=7,
                      nonces=[int(n) for n in nonces], dist=[float(d) for d in dist], node_id=3)


TOLERANCE = TEST_PARAMS.dist_tolerance


def check(model, proof: ProofBatch, r_target: float):
    return validate_batch(model, proof, r_target=r_target, mismatch_rate=DEFAULT_MISMATCH_RATE,
                          fraud_threshold=DEFAULT_FRAUD_THRESHOLD, dist_tolerance=TOLERANCE,
                          chunk_size=64)


def test_an_honest_batch_passes(model, computed):
    # Given 200 nonces that really are below r_target, with their true distances
    nonces, dist, r_target = computed
    valid = dist < r_target
    proof = batch(nonces[valid][:200], dist[valid][:200])

    # When a validator recomputes them
    result = check(model, proof, r_target)

    # Then none fails, p = 1 and there is no fraud; the verdict carries the batch's identity
    assert (result.n_checked, result.n_invalid, result.n_duplicates) == (200, 0, 0)
    assert result.probability_honest == 1.0 and not result.fraud_detected
    assert result.dist == pytest.approx(proof.dist, abs=0)
    assert result.received_dist == proof.dist and result.nonces == proof.nonces
    assert (result.public_key, result.block_height, result.node_id) == (KEY, 7, 3)
    assert result.r_target == r_target


def test_ten_percent_made_up_nonces_are_fraud(model, computed):
    # Given 180 valid nonces and 20 invalid ones claimed to be just below r_target
    nonces, dist, r_target = computed
    valid = dist < r_target
    made_up = nonces[dist > r_target + TOLERANCE][:20]
    proof = batch(np.concatenate([nonces[valid][:180], made_up]),
                  np.concatenate([dist[valid][:180], np.full(20, r_target - 1e-3)]))

    result = check(model, proof, r_target)

    # Then exactly the made-up ones fail and the batch is fraud
    assert result.n_invalid == 20
    assert result.fraud_detected
    assert result.probability_honest < DEFAULT_FRAUD_THRESHOLD
    recomputed = dict(zip(result.nonces, result.dist, strict=True))
    assert all(recomputed[int(n)] > r_target + TOLERANCE for n in made_up)
    assert result.dist_tolerance == TOLERANCE


def test_a_recomputed_distance_within_the_tolerance_passes(model, computed):
    # Given nonces whose true distance lies in [r_target, r_target + tolerance], claimed below
    nonces, dist, _ = computed
    r_target = float(np.sort(dist)[600])
    near = (dist >= r_target) & (dist <= r_target + TOLERANCE)
    assert near.sum() >= 1
    proof = batch(nonces[near], np.full(near.sum(), r_target - 1e-6))

    # Then they pass: another implementation may have computed them just below r_target
    result = check(model, proof, r_target)
    assert result.n_invalid == 0


def test_repeating_a_valid_nonce_does_not_add_weight(model, computed):
    # Given one valid nonce sent 200 times
    nonces, dist, r_target = computed
    i = int(np.argmax(dist < r_target))
    proof = batch([nonces[i]] * 200, [dist[i]] * 200)

    result = check(model, proof, r_target)

    # Then every repetition fails and the batch is fraud
    assert (result.n_invalid, result.n_duplicates) == (199, 199)
    assert result.fraud_detected
    assert result.dist == [dist[i]] * 200


def test_a_few_repeats_among_honest_nonces_count_once_each(model, computed):
    nonces, dist, r_target = computed
    valid = dist < r_target
    chosen, chosen_dist = nonces[valid][:198], dist[valid][:198]
    proof = batch(np.concatenate([chosen, chosen[:2]]), np.concatenate([chosen_dist,
                                                                       chosen_dist[:2]]))
    result = check(model, proof, r_target)
    assert (result.n_invalid, result.n_duplicates) == (2, 2)
    assert not result.fraud_detected


def test_a_claim_at_or_above_r_target_counts_as_a_failure(model, computed):
    # Given an honest batch in which one claim is not below r_target (the reference crashes)
    nonces, dist, r_target = computed
    valid = dist < r_target
    claims = dist[valid][:200].copy()
    claims[5] = r_target
    claims[9] = 1.99
    result = check(model, batch(nonces[valid][:200], claims), r_target)
    assert result.n_invalid == 2
    assert not result.fraud_detected


def test_an_empty_batch_is_honest(model, computed):
    result = check(model, batch([], []), computed[2])
    assert (result.n_checked, result.n_invalid, result.probability_honest) == (0, 0, 1.0)
    assert not result.fraud_detected


def test_a_batch_for_another_block_is_refused(model, computed):
    nonces, dist, r_target = computed
    other = bytes(32)
    with pytest.raises(BlockHashMismatch, match=other.hex()):
        check(model, batch(nonces[:3], dist[:3], block_hash=other), r_target)
