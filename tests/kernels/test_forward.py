"""`TritonPocModel` (device weights, fused kernels, torch GEMMs) against the reference PocModel."""

import numpy as np
import pytest
import torch

from chain.types.poc import TEST_PARAMS, PocParams
from kernels.forward import TritonPocModel, TritonPocWeights
from mlnode.pow.model import PocModel, PocWeights

NONCES = np.arange(64, dtype=np.uint64) * np.uint64(2_654_435_761) + np.uint64(2**40)


@pytest.fixture(scope="module")
def models(device, block_hash):
    return PocModel.build(TEST_PARAMS, block_hash), TritonPocModel.build(TEST_PARAMS, block_hash,
                                                                         device)


def test_device_weights_equal_the_reference(device, block_hash):
    want = PocWeights.generate(TEST_PARAMS, block_hash)
    got = TritonPocWeights.generate(TEST_PARAMS, block_hash, device)
    for mine, ref in zip(got.layers, want.layers, strict=True):
        for field in ("attention_norm", "wqkv", "wo", "ffn_norm", "w13", "w2"):
            assert torch.equal(getattr(mine, field).cpu(), getattr(ref, field)), field
    for field in ("norm", "output", "cos", "sin"):
        assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), field
    np.testing.assert_allclose(got.target.cpu().numpy(), want.target, rtol=1e-15, atol=1e-17)


def test_distances_agree_with_the_reference(models, public_key):
    reference, triton_model = models
    want = reference.distances(public_key, NONCES)
    got = triton_model.distances(public_key, NONCES)
    assert got.dtype == np.float64 and got.shape == (len(NONCES),)
    # A one-ulp bf16 difference anywhere (norm sums, exp, attention order; on a GPU also the
    # GEMMs) moves a nonce's distance by up to ~4e-4 on TEST_PARAMS. Under the interpreter these
    # 64 nonces come out identical; over 768 others, 0.5-1% differed, by at most 3.8e-4.
    delta = np.abs(got - want)
    assert delta.max() < 2e-3, delta.max()
    r = TEST_PARAMS.r_target
    disagree = (got < r) != (want < r)
    assert not disagree[np.abs(want - r) > 2e-3].any()     # only a near-threshold nonce may flip
    assert 0 < (want < r).sum() < len(NONCES)               # both outcomes are exercised


def test_logits_agree_with_the_reference(models, public_key):
    reference, triton_model = models
    want = reference.logits(public_key, NONCES[:8])
    got = triton_model.logits(public_key, torch.from_numpy(NONCES[:8].astype(np.int64)))
    assert got.dtype == torch.float32 and got.shape == (8, TEST_PARAMS.vocab)
    # Identical under the interpreter; a nonce hit by a one-ulp flip moves by ~1% of the range.
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=3e-2 * want.abs().max().item())


def test_no_nonces_no_distances(models, public_key):
    assert models[1].distances(public_key, []).shape == (0,)


def test_nonce_at_or_above_2_63_is_refused(models, public_key):
    with pytest.raises(ValueError):
        models[1].distances(public_key, np.array([2**63], dtype=np.uint64))


@pytest.mark.parametrize("params", [
    PocParams(dim=8, n_layers=1, n_heads=4, ffn_dim=3, vocab=5, seq_len=1),     # head_dim 2
    PocParams(dim=48, n_layers=3, n_heads=1, ffn_dim=40, vocab=70, seq_len=37),
], ids=["one-position", "one-head"])
def test_odd_shapes_agree_with_the_reference(device, block_hash, public_key, params):
    nonces = NONCES[:8]
    want = PocModel.build(params, block_hash).distances(public_key, nonces)
    got = TritonPocModel.build(params, block_hash, device).distances(public_key, nonces)
    assert np.abs(got - want).max() < 2e-3
