"""The PoC function's reference (mlnode/pow): Philox, streams, tensors, the committed vectors, and
the fast CPU path's agreement with the reference. SPEC.md is the contract these check."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
import torch

from chain.types.poc import TEST_PARAMS, PocParams
from mlnode.pow import model as M
from mlnode.pow import rng, vectors
from mlnode.pow.philox import philox4x32

BLOCK = bytes(range(32))
KEY = bytes.fromhex("02" + "11" * 32)


def test_philox_matches_random123_known_answers():
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for counter, key, words in cases:
        assert tuple(int(w) for w in philox4x32(*counter, *key)) == words


def test_uniform_is_exact_symmetric_and_unit_range():
    words = np.array([0, 511, 512, 2**31, 2**32 - 1], dtype=np.uint32)
    u = rng.uniform(words)
    assert u.dtype == np.float32
    assert u[0] == -u[-1] == np.float32(-(2**23 - 1) * 2.0**-23)
    assert u[0] == u[1]                      # the low 9 bits are dropped
    assert u[3] == np.float32(2.0**-23)      # odd multiples of 2^-23: never exactly zero
    assert np.all(np.abs(u) < 1)


def test_streams_depend_on_every_seed_part():
    a = rng.tensor_stream(BLOCK, "output.weight")
    assert a != rng.tensor_stream(BLOCK, "norm.weight")
    assert a != rng.tensor_stream(bytes(32), "output.weight")
    other_key = bytes.fromhex("03" + "11" * 32)
    assert rng.input_stream(BLOCK, KEY) != rng.input_stream(BLOCK, other_key)
    assert rng.input_stream(BLOCK, KEY) != rng.permutation_stream(BLOCK, KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        rng.tensor_stream(b"short", "x")
    with pytest.raises(ValueError, match="compressed"):
        rng.input_stream(BLOCK, b"\x04" + bytes(32))


def test_nonce_stream_elements_are_independent_of_batch_and_count():
    s = rng.input_stream(BLOCK, KEY)
    alone = rng.nonce_u32(s, [2**40 + 3], 10)
    together = rng.nonce_u32(s, [5, 2**40 + 3, 9], 37)
    assert np.array_equal(alone[0], together[1, :10])
    assert not np.array_equal(together[0], together[2])


def test_weight_statistics_follow_the_spec():
    p = TEST_PARAMS
    shapes = M.tensor_shapes(p)
    assert len(shapes) == 9 * p.n_layers + 2
    w2 = M.make_tensor(BLOCK, "layers.0.feed_forward.w2.weight", shapes[
        "layers.0.feed_forward.w2.weight"])
    assert w2.dtype == torch.bfloat16 and w2.shape == (p.dim, p.ffn_dim)
    assert abs(w2.float().var().item() * p.ffn_dim - 1.0) < 0.05     # variance 1 / fan_in
    norm = M.make_tensor(BLOCK, "norm.weight", (p.dim,)).float()
    assert 0.5 <= norm.min() and norm.max() <= 1.5
    x = M.make_inputs(BLOCK, KEY, [0, 1], p)
    assert x.shape == (2, p.seq_len, p.dim)
    assert abs(x.float().var().item() - 1.0) < 0.1
    t = M.make_target(BLOCK, p.vocab)
    assert math.isclose(np.linalg.norm(t), 1.0)
    perm = M.make_permutations(BLOCK, KEY, [0], p.vocab)[0]
    assert sorted(perm.tolist()) == list(range(p.vocab))


def test_committed_vectors_reproduce():
    """Exact parts must be equal; distances within a tenth of the tolerance (SPEC.md 8)."""
    data = vectors.load()
    fresh = msgspec.json.decode(msgspec.json.encode(vectors.make()))
    params = msgspec.convert(data["params"], PocParams)
    assert fresh["philox"] == data["philox"]
    for old, new in zip(data["cases"], fresh["cases"], strict=True):
        for field in ("tensor_words", "tensors", "target", "inputs", "permutations", "nonces"):
            assert old[field] == new[field], field
        diff = np.abs(np.array(old["distances"]) - np.array(new["distances"]))
        assert diff.max() < params.dist_tolerance / 10


def test_distances_do_not_depend_on_batching():
    model = M.PocModel.build(TEST_PARAMS, BLOCK, batch_size=8)
    nonces = np.arange(20)
    whole = model.distances(KEY, nonces)
    one_by_one = np.concatenate([model.distances(KEY, [n]) for n in nonces])
    assert np.abs(whole - one_by_one).max() < 1e-9
    assert np.all((whole >= 0) & (whole <= 2))
    assert model.distances(KEY, []).shape == (0,)


def test_different_keys_and_blocks_give_different_distances():
    a = M.PocModel.build(TEST_PARAMS, BLOCK).distances(KEY, np.arange(8))
    b = M.PocModel.build(TEST_PARAMS, BLOCK).distances(bytes.fromhex("03" + "11" * 32),
                                                       np.arange(8))
    c = M.PocModel.build(TEST_PARAMS, bytes(32)).distances(KEY, np.arange(8))
    assert not np.allclose(a, b) and not np.allclose(a, c)


def test_zero_output_is_infinitely_far():
    d = M.distances_from_logits(np.zeros((1, 4)), np.array([[0, 1, 2, 3]]), np.full(4, 0.5))
    assert d[0] == np.inf


def test_compiled_path_agrees_with_the_reference():
    weights = M.PocWeights.generate(TEST_PARAMS, BLOCK)
    nonces = np.arange(64)
    ref = M.PocModel(weights, batch_size=32).distances(KEY, nonces)
    fast = M.PocModel(weights, ops=M.compiled_ops(), batch_size=32).distances(KEY, nonces)
    assert np.abs(ref - fast).max() < TEST_PARAMS.dist_tolerance
    r = TEST_PARAMS.r_target
    # no honest flip beyond the tolerance in either direction
    assert not np.any((ref < r) & (fast > r + TEST_PARAMS.dist_tolerance))
    assert not np.any((fast < r) & (ref > r + TEST_PARAMS.dist_tolerance))


def test_params_reject_inconsistent_shapes():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        PocParams(dim=65, n_layers=1, n_heads=2, ffn_dim=8, vocab=8, seq_len=2)
    with pytest.raises(ValueError, match="even"):
        PocParams(dim=6, n_layers=1, n_heads=2, ffn_dim=8, vocab=8, seq_len=2)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"dim": 64, "n_layers": 0, "n_heads": 2, "ffn_dim": 8, '
                            b'"vocab": 8, "seq_len": 2}', type=PocParams)
