"""Rounding helpers shared by the PoC Triton kernels: exact bfloat16 <-> float32 and exp.

Every kernel converts through these instead of `.to(tl.bfloat16)` / `.to(tl.float32)` because
Triton's interpreter (TRITON_INTERPRET=1, our CPU test path) truncates float32 -> bfloat16 instead
of rounding to nearest even and multiplies bfloat16 `tl.dot` operands as raw integers. Doing the
rounding on the bits gives the same answer as torch's `.to(torch.bfloat16)` on a GPU and in the
interpreter alike. Kernels using these must be launched with `enable_fp_fusion=False` (see
`LAUNCH`), so that a GPU does not contract `a * b - c * d` into an FMA the reference never does.
Nothing here may allocate or touch memory: these are elementwise `@triton.jit` functions.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

# Launch options of every PoC kernel: no FMA contraction (the reference rounds each product).
LAUNCH = {"enable_fp_fusion": False, "enable_reflect_ftz": False}


def on_gpu(device: torch.device) -> bool:
    """Whether kernels for tensors on `device` are compiled for a GPU rather than interpreted.

    It picks tile sizes and the precise exp; the sm_90 compile test patches it to build the GPU
    variants on a machine without one.
    """
    return torch.device(device).type == "cuda"


@triton.jit
def bf16_to_f32(x):
    """bfloat16 -> float32, exact (the bits shifted into the high half)."""
    bits = x.to(tl.uint16, bitcast=True).to(tl.uint32) << 16
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def f32_to_bf16(x):
    """float32 -> bfloat16, round to nearest even; NaN -> 0x7FC0 (what torch does)."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    rounded = tl.where(x == x, rounded, 0x7FC00000).to(tl.uint32)
    return (rounded >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def exp_f32(x, PRECISE: tl.constexpr):
    """exp in float32. PRECISE (GPU only): libdevice's expf (<= 2 ulp) instead of `tl.exp`,
    which a GPU lowers to ex2.approx(x * log2 e); the interpreter has no libdevice."""
    if PRECISE:
        return libdevice.exp(x)
    else:
        return tl.exp(x)
