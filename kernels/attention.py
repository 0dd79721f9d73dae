"""Causal attention of the PoC transformer for its short sequences (SPEC.md 5, `model.attention`).

One program per (batch * head, query block). The reference normalises the softmax before it
rounds the probabilities to bfloat16, so the usual one-pass online softmax (which divides at the
end) would round differently. When all keys fit one block (BLOCK_N >= seq_len) the scores are
computed once; otherwise three passes walk the keys: the row maximum, the row sum of
exp(s - max), then p = bf16(exp(s - max) * (1 / sum)) and the fp32 accumulation of p @ v,
recomputing the scores each time, which costs little next to the GEMMs at PoC sizes
(head_dim ~64, seq_len <= a few hundred). Both products are fp32 `tl.dot`s with
input_precision="ieee" on values converted exactly from bf16: bf16 x bf16 products are exact in
fp32, so this is the reference's "fp32 accumulation of bf16 products" (and the interpreter cannot
multiply bf16 operands). Never writes anything but the output.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from kernels import numerics
from kernels.numerics import LAUNCH, bf16_to_f32, exp_f32, f32_to_bf16


@triton.jit
def _scores(q, k_ptr, stride_ks, qpos, skv, start, scale,
            HD: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """fp32 scores [BLOCK_M, BLOCK_N] of the keys start.. ; -inf where masked."""
    kpos = start + tl.arange(0, BLOCK_N)
    dcol = tl.arange(0, BLOCK_D)
    kmask = (kpos[:, None] < skv) & (dcol[None, :] < HD)
    k = bf16_to_f32(tl.load(k_ptr + kpos[:, None] * stride_ks + dcol[None, :], mask=kmask,
                            other=0.0))
    s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
    valid = kpos[None, :] < skv
    if CAUSAL:
        valid = valid & (kpos[None, :] <= qpos[:, None])
    return tl.where(valid, s, float("-inf"))


@triton.jit
def _values(v_ptr, stride_vs, skv, start, HD: tl.constexpr, BLOCK_N: tl.constexpr,
            BLOCK_D: tl.constexpr):
    """fp32 values [BLOCK_N, BLOCK_D] of the keys start.. ; 0 beyond skv."""
    kpos = start + tl.arange(0, BLOCK_N)
    dcol = tl.arange(0, BLOCK_D)
    mask = (kpos[:, None] < skv) & (dcol[None, :] < HD)
    return bf16_to_f32(tl.load(v_ptr + kpos[:, None] * stride_vs + dcol[None, :], mask=mask,
                               other=0.0))


@triton.jit(do_not_specialize=["sq", "skv", "q_pos0"])
def _attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, sq, skv, q_pos0, scale, n_heads,
                      stride_qb, stride_qs, stride_qh, stride_kb, stride_ks, stride_kh,
                      stride_vb, stride_vs, stride_vh, stride_ob, stride_os, stride_oh,
                      HD: tl.constexpr, CAUSAL: tl.constexpr, PRECISE: tl.constexpr,
                      ONE_BLOCK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                      BLOCK_D: tl.constexpr):
    bh = tl.program_id(0)       # axis 0: a GPU allows 2**31 - 1 programs there, 65535 on axis 1
    pid_m = tl.program_id(1)
    b = (bh // n_heads).to(tl.int64)
    h = (bh % n_heads).to(tl.int64)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    dcol = tl.arange(0, BLOCK_D)
    qmask = (rows[:, None] < sq) & (dcol[None, :] < HD)
    q = bf16_to_f32(tl.load(q_ptr + b * stride_qb + h * stride_qh + rows[:, None] * stride_qs
                            + dcol[None, :], mask=qmask, other=0.0))
    qpos = q_pos0 + rows
    k_base = k_ptr + b * stride_kb + h * stride_kh
    v_base = v_ptr + b * stride_vb + h * stride_vh
    if ONE_BLOCK:
        # All keys in one block: the scores are computed once.
        s = _scores(q, k_base, stride_ks, qpos, skv, 0, scale, HD, CAUSAL, BLOCK_N, BLOCK_D)
        m = tl.max(s, axis=1)
        e = exp_f32(s - m[:, None], PRECISE)
        inv = tl.div_rn(tl.full((BLOCK_M,), 1.0, dtype=tl.float32), tl.sum(e, axis=1))
        p = bf16_to_f32(f32_to_bf16(e * inv[:, None]))
        acc = tl.dot(p, _values(v_base, stride_vs, skv, 0, HD, BLOCK_N, BLOCK_D),
                     input_precision="ieee")
    else:
        end = skv
        if CAUSAL:   # keys past this block's last query are all masked
            end = tl.minimum(skv, q_pos0 + (pid_m + 1) * BLOCK_M)
        m = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
        for start in range(0, end, BLOCK_N):
            s = _scores(q, k_base, stride_ks, qpos, skv, start, scale, HD, CAUSAL, BLOCK_N,
                        BLOCK_D)
            m = tl.maximum(m, tl.max(s, axis=1))
        total = tl.zeros((BLOCK_M,), dtype=tl.float32)
        for start in range(0, end, BLOCK_N):
            s = _scores(q, k_base, stride_ks, qpos, skv, start, scale, HD, CAUSAL, BLOCK_N,
                        BLOCK_D)
            total += tl.sum(exp_f32(s - m[:, None], PRECISE), axis=1)
        inv = tl.div_rn(tl.full((BLOCK_M,), 1.0, dtype=tl.float32), total)
        acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
        for start in range(0, end, BLOCK_N):
            s = _scores(q, k_base, stride_ks, qpos, skv, start, scale, HD, CAUSAL, BLOCK_N,
                        BLOCK_D)
            p = bf16_to_f32(f32_to_bf16(exp_f32(s - m[:, None], PRECISE) * inv[:, None]))
            acc += tl.dot(p, _values(v_base, stride_vs, skv, start, HD, BLOCK_N, BLOCK_D),
                          input_precision="ieee")
    tl.store(o_ptr + b * stride_ob + h * stride_oh + rows[:, None] * stride_os + dcol[None, :],
             f32_to_bf16(acc), mask=qmask)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos0: int | None = None,
              causal: bool = True, block_n: int | None = None) -> torch.Tensor:
    """q [B, sq, H, hd], k and v [B, skv, H, hd] bf16 views (unit last stride) -> [B, sq, H*hd].

    Query row i sits at position q_pos0 + i (default skv - sq: the last sq positions) and sees
    keys 0..q_pos0 + i when causal, all keys otherwise; for the PoC's last layer (one query at
    the last position) both are the same. `block_n` overrides the key block (tests).
    """
    B, sq, H, hd = q.shape
    skv = k.shape[1]
    assert k.shape == v.shape == (B, skv, H, hd)
    assert q.stride(-1) == k.stride(-1) == v.stride(-1) == 1
    if q_pos0 is None:
        q_pos0 = skv - sq
    out = torch.empty((B, sq, H, hd), dtype=torch.bfloat16, device=q.device)
    if B * sq * H == 0:
        return out.flatten(2)
    gpu = numerics.on_gpu(q.device)
    block_d = max(16, triton.next_power_of_2(hd))
    if gpu:
        # fp32 FMA dots keep their operands in registers: these tiles compile for sm_90 at
        # num_warps=8 without spills (ptxas -v) for head_dim 32..256.
        block_m = max(16, min(triton.next_power_of_2(sq), 64, 4096 // block_d))
        default_n = max(16, min(64, 65536 // (block_m * block_d)))
    else:
        block_m = max(16, min(triton.next_power_of_2(sq), 64))
        default_n = 1024   # the interpreter pays per program and per op, not per register
    block_n = max(16, min(block_n or default_n, triton.next_power_of_2(skv)))
    scale = float(np.float32(1.0 / math.sqrt(hd)))
    _attention_kernel[(B * H, triton.cdiv(sq, block_m))](
        q, k, v, out, sq, skv, q_pos0, scale, H,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
        HD=hd, CAUSAL=causal, PRECISE=gpu, ONE_BLOCK=skv <= block_n,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, num_warps=8, **LAUNCH)
    return out.flatten(2)
