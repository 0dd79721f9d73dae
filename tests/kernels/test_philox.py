"""Device Philox and the streams drawn from it are bit-identical to the numpy reference."""

import numpy as np
import pytest
import torch

from chain.types.poc import TEST_PARAMS
from kernels import philox
from mlnode.pow import model, rng
from mlnode.pow import philox as reference

# Random123's known-answer vectors for Philox4x32-10: (counter, key, words).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
NONCES = [0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 123456789012345, 42]


def bits(x: torch.Tensor) -> np.ndarray:
    return x.cpu().view(torch.int16).numpy()


@pytest.mark.parametrize(("counter", "key", "words"), KAT)
def test_philox_matches_random123_vectors(device, counter, key, words):
    counters = torch.tensor(counter, dtype=torch.int64, device=device).reshape(4, 1)
    got = philox.philox4x32(counters, *key)
    assert got[:, 0].tolist() == list(words)


@pytest.mark.parametrize("key", [(0, 0), (1, 2**31), (0xDEADBEEF, 0xFFFFFFFF), (2**31 - 1, 5)])
def test_philox_matches_reference_on_random_counters(device, key):
    counters = np.random.default_rng(key[0]).integers(0, 2**32, size=(4, 3000), dtype=np.uint64)
    want = np.stack(reference.philox4x32(*counters, *key)).astype(np.int64)
    got = philox.philox4x32(torch.from_numpy(counters.astype(np.int64)).to(device), *key)
    np.testing.assert_array_equal(got.cpu().numpy(), want)


def test_every_weight_is_bit_identical(device, block_hash):
    # TEST_PARAMS' tensors: norm vectors, square and FFN matrices, the output matrix (largest).
    for name, shape in model.tensor_shapes(TEST_PARAMS).items():
        want = model.make_tensor(block_hash, name, shape)
        got = philox.make_tensor(block_hash, name, shape, device)
        assert got.dtype == torch.bfloat16 and got.shape == shape
        np.testing.assert_array_equal(bits(got), bits(want), err_msg=name)


def test_weight_generated_into_a_slice(device, block_hash):
    name, shape = "layers.1.feed_forward.w3.weight", (TEST_PARAMS.ffn_dim, TEST_PARAMS.dim)
    stacked = torch.zeros((3 * shape[0], shape[1]), dtype=torch.bfloat16, device=device)
    philox.make_tensor(block_hash, name, shape, device, out=stacked[shape[0]:2 * shape[0]])
    np.testing.assert_array_equal(bits(stacked[shape[0]:2 * shape[0]]),
                                  bits(model.make_tensor(block_hash, name, shape)))
    assert not stacked[:shape[0]].any() and not stacked[2 * shape[0]:].any()


def test_target_matches_reference(device, block_hash):
    got = philox.make_target(block_hash, TEST_PARAMS.vocab, device).cpu().numpy()
    np.testing.assert_allclose(got, model.make_target(block_hash, TEST_PARAMS.vocab),
                               rtol=1e-15, atol=1e-17)


def test_inputs_are_bit_identical(device, block_hash, public_key):
    want = model.make_inputs(block_hash, public_key, NONCES, TEST_PARAMS)
    nonces = torch.tensor(NONCES, dtype=torch.int64, device=device)
    got = philox.make_inputs(block_hash, public_key, nonces, TEST_PARAMS, device)
    assert got.shape == (len(NONCES), TEST_PARAMS.seq_len, TEST_PARAMS.dim)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_permutation_keys_and_permutations_are_identical(device, block_hash, public_key):
    stream = rng.permutation_stream(block_hash, public_key)
    want = rng.nonce_u32(stream, np.array(NONCES, dtype=np.uint64), TEST_PARAMS.vocab)
    got = philox.permutation_keys(block_hash, public_key, NONCES, TEST_PARAMS.vocab, device)
    np.testing.assert_array_equal(got.cpu().numpy(), want.astype(np.int64))
    perms = philox.make_permutations(block_hash, public_key, NONCES, TEST_PARAMS.vocab, device)
    np.testing.assert_array_equal(
        perms.cpu().numpy(),
        model.make_permutations(block_hash, public_key, NONCES, TEST_PARAMS.vocab))


def test_nonce_stream_words_match_reference_past_one_program(device, block_hash, public_key):
    # 40000 elements: several programs per nonce, a partial last block of four words.
    stream = rng.input_stream(block_hash, public_key)
    count = 40_002
    words = torch.empty((3, count), dtype=torch.int64, device=device)
    philox.nonce_stream(stream, torch.tensor(NONCES[3:6], device=device), count, philox.WORDS,
                        words)
    want = rng.nonce_u32(stream, np.array(NONCES[3:6], dtype=np.uint64), count)
    np.testing.assert_array_equal(words.cpu().numpy(), want.astype(np.int64))
