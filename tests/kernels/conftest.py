"""Kernel tests run on CPU under Triton's interpreter unless TRITON_INTERPRET=0 and a GPU is there.

The variable must be set before the first `@triton.jit` of `kernels` runs, i.e. before any test
module imports them; pytest loads this file first.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def device() -> torch.device:
    interpreted = os.environ["TRITON_INTERPRET"] not in ("", "0")
    if interpreted or not torch.cuda.is_available():
        from triton.runtime.interpreter import InterpretedFunction

        from kernels import philox
        if not isinstance(philox.philox4x32_10, InterpretedFunction):
            pytest.fail("kernels were imported before tests/kernels/conftest.py set "
                        "TRITON_INTERPRET=1; set it in the environment")
        return torch.device("cpu")
    return torch.device("cuda")


@pytest.fixture(scope="session")
def block_hash() -> bytes:
    return np.random.default_rng(2024).bytes(32)


@pytest.fixture(scope="session")
def public_key() -> bytes:
    return b"\x03" + np.random.default_rng(7).bytes(32)
