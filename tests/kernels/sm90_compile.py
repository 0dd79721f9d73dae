"""Compile every PoC kernel for an H100 (sm_90) on a machine without a GPU, as the model calls them.

Run as a script in a process *without* TRITON_INTERPRET (test_sm90_compile.py does): a stand-in
driver reports an sm_90 target, `JITFunction.run` compiles without launching, and
`numerics.on_gpu` says yes, so the wrappers pick their GPU tiles. `TritonPocModel` then runs on
CPU tensors (the torch GEMMs really run, on garbage; no kernel does). Prints one JSON object:
kernel name -> list of {constexprs, num_warps, spill_bytes, fma} per compiled variant, where
spill_bytes is what ptxas -v reports and fma counts fused multiply-adds in the PTX.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

assert not os.environ.get("TRITON_INTERPRET"), "run without TRITON_INTERPRET"

import torch  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.backends.nvidia.compiler import get_ptxas  # noqa: E402
from triton.runtime import driver  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)


class _Sm90Driver:
    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_current_target(self):
        return TARGET

    def get_active_torch_device(self):
        return torch.device("cpu")


def _spill_bytes(ptx: str) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    try:
        log = subprocess.run([get_ptxas(90).path, "-v", "--gpu-name", "sm_90a", f.name,
                              "-o", os.devnull], capture_output=True, text=True, check=True).stderr
    finally:
        os.unlink(f.name)
    return sum(int(n) for n in re.findall(r"(\d+) bytes spill stores", log))


def main() -> None:
    driver.set_active(_Sm90Driver())
    compiled: dict[str, dict[str, dict]] = {}
    launch = JITFunction.run

    def compile_only(self, *args, grid, warmup, **kwargs):
        kernel = launch(self, *args, grid=grid, warmup=True, **kwargs)
        variants = compiled.setdefault(self.fn.__name__, {})
        if kernel.hash not in variants:
            ptx = kernel.asm["ptx"]
            variants[kernel.hash] = {
                "constexprs": {k: v for k, v in kwargs.items() if k.isupper()},
                "num_warps": kernel.metadata.num_warps,
                "spill_bytes": _spill_bytes(ptx),
                "fma": len(re.findall(r"\bfma\.rn\.f32\b", ptx)),
            }
        return kernel

    JITFunction.run = compile_only

    from chain.types.poc import TEST_PARAMS, PocParams
    from kernels import numerics, philox
    from kernels.forward import TritonPocModel

    numerics.on_gpu = lambda device: True
    # Mainnet's widths and sequence (head_dim 64, multi-block attention) with fewer layers and a
    # narrower FFN, and the test set (single-block attention, head_dim 32).
    mainnet_like = PocParams(dim=1792, n_layers=2, n_heads=28, ffn_dim=4096, vocab=8196,
                             seq_len=256)
    key = b"\x02" + bytes(32)
    for params in (mainnet_like, TEST_PARAMS):
        TritonPocModel.build(params, bytes(range(32)), "cpu").distances(key, [1, 2])
    philox.philox4x32(torch.zeros((4, 8), dtype=torch.int64), 1, 2)
    json.dump({name: list(v.values()) for name, v in compiled.items()}, sys.stdout)


if __name__ == "__main__":
    main()
