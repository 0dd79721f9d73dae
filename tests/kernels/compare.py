"""How far apart two bfloat16 tensors are: in units in the last place, and how often they differ."""

from __future__ import annotations

import torch


def _ordered(x: torch.Tensor) -> torch.Tensor:
    bits = x.detach().cpu().contiguous().view(torch.int16).to(torch.int32)
    return torch.where(bits < 0, -(bits & 0x7FFF), bits)   # +0 and -0 both map to 0


def bf16_ulps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| in bfloat16 ulps, elementwise (for finite values)."""
    assert a.dtype == b.dtype == torch.bfloat16 and a.shape == b.shape
    return (_ordered(a) - _ordered(b)).abs()


def bf16_report(a: torch.Tensor, b: torch.Tensor) -> tuple[float, int]:
    """(fraction of differing elements, largest difference in ulps)."""
    ulps = bf16_ulps(a, b)
    return (ulps > 0).double().mean().item(), int(ulps.max())
