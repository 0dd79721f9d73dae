"""The last step of the PoC function: permute the logits, normalise, distance to the target.

`distances(logits, permutations, target)` is `mlnode.pow.model.distances_from_logits` on the
device, one program per nonce: z = float64(logits[pi]), ||z|| in float64, then
||z / ||z|| - t|| in float64 (two passes over the gathered row, as the reference computes it, not
the expanded 2 - 2 z.t / ||z||). Only the summation order differs from numpy's (~1e-16). A zero
(or NaN) norm gives +inf, as in the reference. Reads its inputs, writes one float64 per nonce.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import numerics
from kernels.numerics import LAUNCH


@triton.jit
def _distance_kernel(logits_ptr, perm_ptr, target_ptr, out_ptr, vocab,
                     logits_stride, perm_stride, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    logits_row = logits_ptr + row * logits_stride
    perm_row = perm_ptr + row * perm_stride
    acc = tl.zeros((BLOCK,), dtype=tl.float64)
    for start in range(0, vocab, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < vocab
        idx = tl.load(perm_row + offs, mask=mask, other=0)
        z = tl.load(logits_row + idx, mask=mask, other=0.0).to(tl.float64)
        acc += z * z
    norm = tl.sqrt(tl.sum(acc, axis=0))
    divisor = tl.where(norm > 0, norm, 1.0)   # a zero norm's row ends as +inf below
    acc = tl.zeros((BLOCK,), dtype=tl.float64)
    for start in range(0, vocab, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < vocab
        idx = tl.load(perm_row + offs, mask=mask, other=0)
        z = tl.load(logits_row + idx, mask=mask, other=0.0).to(tl.float64)
        t = tl.load(target_ptr + offs, mask=mask, other=0.0)
        diff = tl.where(mask, z / divisor - t, 0.0)
        acc += diff * diff
    dist = tl.sqrt(tl.sum(acc, axis=0))
    tl.store(out_ptr + row, tl.where(norm > 0, dist, float("inf")))


def distances(logits: torch.Tensor, permutations: torch.Tensor,
              target: torch.Tensor) -> torch.Tensor:
    """fp32 logits [B, V], int64 permutations [B, V], float64 target [V] -> float64 [B]."""
    B, vocab = logits.shape
    assert permutations.shape == (B, vocab) and target.shape == (vocab,)
    assert logits.stride(-1) == 1 and permutations.stride(-1) == 1 and target.is_contiguous()
    out = torch.empty(B, dtype=torch.float64, device=logits.device)
    if B:
        cap = 1024 if numerics.on_gpu(logits.device) else 16384
        block = min(triton.next_power_of_2(vocab), cap)
        _distance_kernel[(B,)](logits, permutations, target, out, vocab,
                               logits.stride(0), permutations.stride(0),
                               BLOCK=block, num_warps=8, **LAUNCH)
    return out
