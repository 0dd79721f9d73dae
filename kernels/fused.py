"""The elementwise and row-wise steps of the PoC forward pass between its GEMMs (SPEC.md 5).

  * `add_rms_norm`: residual add (fp32 + bf16 -> fp32) and RMSNorm (fp32 math -> bf16);
  * `rope_`: RoPE of interleaved (even, odd) pairs, in place on a bf16 view (fp32 math);
  * `swiglu`: bf16 [.., 2f] (gate, up) -> bf16 silu(gate) * up (fp32 math).

Each one keeps the rounding points of `mlnode.pow.model` (`rms_norm`, `rope`, the SwiGLU line of
`forward`) operation by operation: same operands, same order, IEEE division and square root, no
FMA contraction. What can still differ from torch on CPU is the order of a row's sum of squares and
the exp inside SiLU (see tests/kernels for the measured rates). No allocation beyond the outputs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import numerics
from kernels.numerics import LAUNCH, bf16_to_f32, exp_f32, f32_to_bf16


@triton.jit
def _rms_norm_kernel(h_ptr, delta_ptr, w_ptr, h_out_ptr, out_ptr, n_rows, n_cols, eps,
                     h_stride, delta_stride, h_out_stride, out_stride,
                     HAS_DELTA: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = rows[:, None] < n_rows
    h_rows = h_ptr + rows[:, None] * h_stride
    delta_rows = delta_ptr + rows[:, None] * delta_stride
    acc = tl.zeros((BLOCK_R, BLOCK), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)[None, :]
        mask = rmask & (cols < n_cols)
        x = tl.load(h_rows + cols, mask=mask, other=0.0)
        if HAS_DELTA:
            x = x + bf16_to_f32(tl.load(delta_rows + cols, mask=mask, other=0.0))
            tl.store(h_out_ptr + rows[:, None] * h_out_stride + cols, x, mask=mask)
        acc += x * x
    mean = tl.div_rn(tl.sum(acc, axis=1), n_cols.to(tl.float32))
    r = tl.div_rn(tl.full((BLOCK_R,), 1.0, dtype=tl.float32), tl.sqrt_rn(mean + eps))
    # The second pass recomputes h + delta from the inputs: reading back this program's own
    # stores would need a barrier between threads on a GPU.
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)[None, :]
        mask = rmask & (cols < n_cols)
        x = tl.load(h_rows + cols, mask=mask, other=0.0)
        if HAS_DELTA:
            x = x + bf16_to_f32(tl.load(delta_rows + cols, mask=mask, other=0.0))
        w = tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0)
        tl.store(out_ptr + rows[:, None] * out_stride + cols, f32_to_bf16(x * r[:, None] * w),
                 mask=mask)


def _rows(x: torch.Tensor, d: int) -> torch.Tensor:
    """x [..., d] as a 2-D [rows, d] view with unit column stride (a copy only if it must)."""
    x = x if x.dim() == 2 else x.reshape(-1, d)
    return x if x.stride(-1) == 1 else x.contiguous()


def _tile(n_cols: int, device: torch.device, cap: int = 4096) -> tuple[int, int]:
    """(rows, columns) of a program's tile. A GPU gets up to `cap` columns of one row, or several
    short rows (<= 4096 elements a program); the interpreter, whose cost is per program, up to
    64K elements a program."""
    gpu = numerics.on_gpu(device)
    block = min(triton.next_power_of_2(n_cols), cap if gpu else 65536)
    budget = 4096 if gpu else 65536
    return max(1, budget // block), block


def add_rms_norm(h: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(h + delta.float(), rms_norm(h + delta.float(), weight, eps)) as fp32 and bf16 [rows, d].

    h: fp32 [..., d]; delta: bf16 [..., d] with as many rows, or None (then h itself is returned
    and normalised); weight: fp32 [d]. Rows may be strided (e.g. h[:, -1] of [B, s, d]).
    """
    d = h.shape[-1]
    h2 = _rows(h, d)
    rows = h2.shape[0]
    out = torch.empty((rows, d), dtype=torch.bfloat16, device=h.device)
    if delta is None:
        h_out, delta2 = h2, h2
    else:
        delta2 = _rows(delta, d)
        assert delta2.shape == h2.shape
        h_out = torch.empty((rows, d), dtype=torch.float32, device=h.device)
    if rows:
        block_r, block = _tile(d, h.device)
        _rms_norm_kernel[(triton.cdiv(rows, block_r),)](
            h2, delta2, weight, h_out, out, rows, d, eps,
            h2.stride(0), delta2.stride(0), h_out.stride(0), out.stride(0),
            HAS_DELTA=delta is not None, BLOCK_R=block_r, BLOCK=block,
            num_warps=min(16, max(1, block_r * block // 256)), **LAUNCH)
    return h_out, out


@triton.jit
def _rope_kernel(x_ptr, cos_ptr, sin_ptr, n_rows, n_seq, pos0, n_pairs,
                 stride_b, stride_s, stride_h, HALF: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    b = (rows // n_seq).to(tl.int64)
    s = rows % n_seq
    pair = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)[None, :]
    mask = (rows < n_rows) & (pair < n_pairs)
    head = pair // HALF
    i = pair % HALF
    ptr = x_ptr + b * stride_b + s * stride_s + head * stride_h + 2 * i
    x0 = bf16_to_f32(tl.load(ptr, mask=mask, other=0.0))
    x1 = bf16_to_f32(tl.load(ptr + 1, mask=mask, other=0.0))
    table = (pos0 + s) * HALF + i
    c = tl.load(cos_ptr + table, mask=mask, other=0.0)
    sn = tl.load(sin_ptr + table, mask=mask, other=0.0)
    tl.store(ptr, f32_to_bf16(x0 * c - x1 * sn), mask=mask)
    tl.store(ptr + 1, f32_to_bf16(x0 * sn + x1 * c), mask=mask)


def rope_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos0: int = 0) -> torch.Tensor:
    """Rotate bf16 x [B, S, n, hd] in place; row s of x sits at position pos0 + s.

    x may be any view with unit stride in its last dimension (e.g. the q and k heads of a
    [B, s, 3, H, hd] projection); cos, sin: fp32 [seq_len, hd / 2] contiguous, `rope_tables`.
    """
    B, S, n, hd = x.shape
    assert x.stride(-1) == 1 and hd % 2 == 0 and cos.shape[-1] == hd // 2
    assert pos0 + S <= cos.shape[0]
    n_pairs = n * hd // 2
    if B * S and n_pairs:
        block_r, block = _tile(n_pairs, x.device, cap=1024)
        _rope_kernel[(triton.cdiv(B * S, block_r), triton.cdiv(n_pairs, block))](
            x, cos, sin, B * S, S, pos0, n_pairs, x.stride(0), x.stride(1), x.stride(2),
            HALF=hd // 2, BLOCK_R=block_r, BLOCK=block, num_warps=4, **LAUNCH)
    return x


@triton.jit
def _swiglu_kernel(gu_ptr, out_ptr, n_rows, f, gu_stride, out_stride,
                   PRECISE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)[None, :]
    mask = (rows < n_rows) & (cols < f)
    g = bf16_to_f32(tl.load(gu_ptr + rows * gu_stride + cols, mask=mask, other=0.0))
    u = bf16_to_f32(tl.load(gu_ptr + rows * gu_stride + f + cols, mask=mask, other=0.0))
    silu = tl.div_rn(g, 1.0 + exp_f32(-g, PRECISE))   # torch's silu: x / (1 + exp(-x))
    tl.store(out_ptr + rows * out_stride + cols, f32_to_bf16(silu * u), mask=mask)


def swiglu(gu: torch.Tensor) -> torch.Tensor:
    """bf16 [..., 2f] = (gate | up) -> bf16 [..., f] = bf16(silu(gate) * up), fp32 math."""
    f = gu.shape[-1] // 2
    gu2 = _rows(gu, 2 * f)
    out = torch.empty((*gu.shape[:-1], f), dtype=torch.bfloat16, device=gu.device)
    rows = gu2.shape[0]
    if rows and f:
        block_r, block = _tile(f, gu.device, cap=1024)
        _swiglu_kernel[(triton.cdiv(rows, block_r), triton.cdiv(f, block))](
            gu2, out, rows, f, gu2.stride(0), f, PRECISE=numerics.on_gpu(gu.device),
            BLOCK_R=block_r, BLOCK=block, num_warps=4, **LAUNCH)
    return out
