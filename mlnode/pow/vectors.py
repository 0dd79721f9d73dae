"""Test vectors of the PoC function (SPEC.md section 8): make them, or check an implementation.

    python -m mlnode.pow.vectors > mlnode/pow/vectors.json     # regenerate (the spec changed)

The vectors pin everything bit-exact up to the forward pass (Philox words, weights, inputs, target,
permutations) and the reference distances of 16 nonces per case, which another implementation
must reproduce within a tenth of `dist_tolerance`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import numpy as np
import torch

from chain.types.poc import TEST_PARAMS, PocParams
from mlnode.pow import model as M
from mlnode.pow import rng
from mlnode.pow.philox import philox4x32

PATH = Path(__file__).with_name("vectors.json")
CASES = [
    (bytes(range(32)), bytes.fromhex("02" + "11" * 32)),
    (bytes.fromhex("ab" * 32), bytes.fromhex("03" + "7f" * 32)),
]
NONCES = [0, 1, 2, 3, 7, 100, 1000, 65535, 65536, 2**31, 2**32 + 5, 2**40, 2**62, 2**63 - 1,
          123456789, 987654321]
SAMPLED_TENSORS = ["layers.0.attention_norm.weight", "layers.1.feed_forward.w2.weight",
                   "output.weight"]


def _bits(t: torch.Tensor, count: int = 8) -> list[int]:
    """The first `count` values as float32 bit patterns (bfloat16 widens exactly)."""
    return t.reshape(-1)[:count].float().numpy().view(np.uint32).tolist()


def make(params: PocParams = TEST_PARAMS) -> dict:
    philox = []
    for counter, key in [((0, 0, 0, 0), (0, 0)), ((1, 2, 3, 4), (5, 6)),
                         ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2)]:
        philox.append({"counter": list(counter), "key": list(key),
                       "words": [int(w) for w in philox4x32(*counter, *key)]})
    cases = []
    for block_hash, public_key in CASES:
        model = M.PocModel.build(params, block_hash)
        shapes = M.tensor_shapes(params)
        cases.append({
            "block_hash": block_hash.hex(),
            "public_key": public_key.hex(),
            "tensor_words": {n: rng.tensor_u32(rng.tensor_stream(block_hash, n), 4).tolist()
                             for n in SAMPLED_TENSORS},
            "tensors": {n: _bits(M.make_tensor(block_hash, n, shapes[n]))
                        for n in SAMPLED_TENSORS},
            "target": M.make_target(block_hash, params.vocab)[:4].tolist(),
            "inputs": {str(n): _bits(M.make_inputs(block_hash, public_key, [n], params))
                       for n in NONCES[:4]},
            "permutations": {str(n): M.make_permutations(block_hash, public_key, [n],
                                                         params.vocab)[0, :8].tolist()
                             for n in NONCES[:4]},
            "nonces": NONCES,
            "distances": model.distances(public_key, NONCES).tolist(),
        })
    return {"version": "gonka-poc-v1", "params": msgspec.to_builtins(params), "philox": philox,
            "cases": cases}


def load() -> dict:
    return json.loads(PATH.read_text())


if __name__ == "__main__":
    data = make()
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")
