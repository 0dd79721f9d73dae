"""Every kernel, as `TritonPocModel` launches it, compiles for an H100 (sm_90) without spilling, and
the kernels whose rounding must match the reference op for op contain no contracted FMA.

No GPU needed: `sm90_compile.py` compiles through Triton's NVIDIA backend in a child process
without TRITON_INTERPRET. This is what catches kernel code the interpreter accepts and the
compiler does not (non-constexpr globals, type errors), and GPU tiles that spill.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton.backends.nvidia.compiler")

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {"_tensor_stream_kernel", "_nonce_stream_kernel", "_philox_kernel", "_rms_norm_kernel",
           "_rope_kernel", "_swiglu_kernel", "_attention_kernel", "_distance_kernel"}
NO_FMA = {"_tensor_stream_kernel", "_nonce_stream_kernel", "_philox_kernel", "_rms_norm_kernel",
          "_rope_kernel", "_distance_kernel"}


@pytest.fixture(scope="module")
def compiled() -> dict[str, list[dict]]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("sm90_compile.py"))],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


def test_every_kernel_compiles_for_sm90(compiled):
    assert KERNELS <= set(compiled)


def test_no_kernel_spills_registers(compiled):
    spills = {(name, json.dumps(v["constexprs"])): v["spill_bytes"]
              for name, variants in compiled.items() for v in variants if v["spill_bytes"]}
    assert not spills


def test_reference_rounding_kernels_have_no_fma(compiled):
    fmas = {name: v["fma"] for name in NO_FMA for v in compiled[name] if v["fma"]}
    assert not fmas


def test_gpu_variants_use_libdevice_exp(compiled):
    for name in ("_swiglu_kernel", "_attention_kernel"):
        assert all(v["constexprs"]["PRECISE"] for v in compiled[name])
