"""Fixtures of the slow ML-node tests: the vLLM venv and a tiny local model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlnode.inference.tiny_model import make_tiny_model
from mlnode.inference.vllm_server import vllm_python

ROOT = Path(__file__).resolve().parents[2]
# Small, machine-independent memory: an explicit KV cache size skips vLLM's CPU check of
# --gpu-memory-utilization (a fraction of the NUMA node's memory); eager mode skips
# torch.compile, which halves start-up here.
CPU_ARGS = [
    "--max-model-len", "512",
    "--kv-cache-memory-bytes", str(256 << 20),
    "--max-num-seqs", "4",
    "--enforce-eager",
]  # fmt: skip


@pytest.fixture(scope="session")
def vllm_python_path() -> str:
    """The python with vLLM; builds .venv-vllm first unless GONKA_VLLM_PYTHON names one."""
    if not os.environ.get("GONKA_VLLM_PYTHON"):
        subprocess.run(["bash", str(ROOT / "scripts" / "vllm_env.sh")], check=True)
    return vllm_python()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama") / "model")
