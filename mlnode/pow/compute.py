"""Which implementation of the PoC function a node runs: the one place that chooses.

    reference  the eager CPU reference (`model.PocModel`), the answer every path is checked against
    cpu        the same forward with its elementwise steps compiled (`model.compiled_ops`)
    triton     the GPU path (`kernels.forward.TritonPocModel`): weights and inputs generated on
               the device, fused Triton kernels, cuBLAS bf16 GEMMs
    auto       triton when CUDA is available, else cpu

All return an object with `.params` and `.distances(public_key, nonces) -> float64 array`.
"""

from __future__ import annotations

from typing import Literal

from chain.types.poc import PocParams

Backend = Literal["auto", "reference", "cpu", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "reference", "cpu", "triton")
# Nonces per forward pass on a CPU: large enough that the GEMMs run at full rate, small enough
# that one batch's activations stay in a few hundred MB for the `small` set.
CPU_BATCH = 64


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def build_poc_function(params: PocParams, block_hash: bytes, backend: Backend = "auto"):
    if backend not in BACKENDS:
        raise ValueError(f"unknown PoC backend {backend!r}; one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "triton" if cuda_available() else "cpu"
    if backend == "triton":
        if not cuda_available():
            raise RuntimeError("the triton PoC backend needs a CUDA device")
        from kernels.forward import TritonPocModel
        return TritonPocModel.build(params, block_hash, device="cuda")
    from mlnode.pow.model import PocModel, compiled_ops
    if backend == "cpu":
        return PocModel.build(params, block_hash, ops=compiled_ops(), batch_size=CPU_BATCH)
    return PocModel.build(params, block_hash, batch_size=CPU_BATCH)
