"""`gonka devnet`: the one-machine network of DESIGN.md section 2.

One command runs, in one trio nursery that it owns, the devnet's single-validator chain node, a
mock ML node (testermint_py.mock_mlnode: chat completions from a hash-defined toy language model,
PoC with a fake function) and the host's API node (`serve_api`, as `gonka api start` runs it).
The host is the validator's operator account: its API node registers it as a participant with
the chain node's consensus key, mines in each epoch's PoC through the mock and so gets weight.
Once the host has weight and its ML node serves the devnet model, the devnet prints its
endpoints and a signed `openai` example, then runs until Ctrl-C (or SIGTERM), which cancels the
nursery: nothing is left running.

The home (default ~/.gonka/devnet) is created on first use:

    config/, data/      the chain node: chain id `gonka-devnet`, params profile `devnet` (epochs of
                        40 blocks of about a second, the first PoC at height 20), this node the
                        only validator
    keyring/            `developer` (funded in the genesis) and `validator-operator` (the host),
                        both stored unencrypted: devnet keys are throwaway
    api/config.toml     the host's API node (`gonka api start --home HOME` reads it too)

A home made by the older, chain-only `gonka devnet` gets its api/config.toml at the next start
and its host registers then (it has weight from the next epoch's PoC on). Ports are in the two
config files (chain p2p 26656 and RPC 26657, API public 9000, callbacks 9100, admin 9200); the
mock ML node listens at the URL of the `mock` entry of the API node's `ml_nodes` (8080). The
files it writes bind every server to 127.0.0.1: nothing outside this machine reaches the devnet.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Callable
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
from tools.cli.command import CliError, first_exception, run_until_signal

if TYPE_CHECKING:  # the API node is imported only when the devnet runs
    from api.node.config import ApiNodeConfig
    from api.node.server import ApiServer

DEFAULT_HOME = Path("~/.gonka/devnet")
CHAIN_ID = "gonka-devnet"
DEVELOPER = "developer"
OPERATOR = "validator-operator"
DEVELOPER_FUNDS = 1_000_000 * NGONKA_PER_GONKA
MOCK_NODE_ID = "mock"
READY = "devnet ready"

NOT_BUILT = (
    ("--mlnode real (a vLLM ML node instead of the mock; `gonka mlnode start` runs one alone)",
     7),
    ("a progress display (the devnet prints each new PoC stage until ready)", 7),
    ("testermint_py's harness: process / netns / docker backends for N participants, fault "
     "injection, the scenario tests", 7),
)

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

# `gonka devnet` serves its mock ML node at this URL.
[[ml_nodes]]
id = {mock_id}
url = "http://127.0.0.1:8080"
models = [{model}]

[broker]
poll_interval_s = 2.0
retry_delay_s = 0.2
"""


def register(commands: argparse._SubParsersAction) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="run a one-machine network: chain, API node and mock ML node",
        description="Run the devnet until Ctrl-C: a single-validator chain, the host's API node "
        "and a mock ML node on this machine. Once the host has won weight in the first PoC, it "
        "prints the endpoints and how to send a signed request.",
    )
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
            mock_id=json.dumps(MOCK_NODE_ID), model=json.dumps(DEVNET_MODEL)))
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


def _mock_bind(config: ApiNodeConfig) -> tuple[str, int]:
    """Where the mock ML node listens: the host and port of the config's `mock` ML node."""
    node = next((n for n in config.ml_nodes if n.id == MOCK_NODE_ID), None)
    if node is None:
        raise CliError(f"the API node's config has no ML node {MOCK_NODE_ID!r} (ml_nodes), "
                       "where the devnet serves its mock ML node")
    url = urlsplit(node.url)
    if url.hostname is None or url.port is None:
        raise CliError(f"ML node {MOCK_NODE_ID!r}: {node.url} names no host and port")
    return url.hostname, url.port


def _devnet(args: argparse.Namespace) -> int:
    root = Path(getattr(args, "home", None) or DEFAULT_HOME).expanduser()
    home = prepare_home(root)
    developer = Keystore(root).show(DEVELOPER)
    print(f"devnet home:        {root}")
    print(f"developer account:  {developer.address}  "
          f"(gonka keys export {DEVELOPER} --home {root})")
    print(f"native hot paths:   {native.BACKEND}")
    if args.init_only:
        return 0
    _check_genesis(home)
    return _run(root, home)


def _run(root: Path, home: NodeHome) -> int:
    import msgspec

    from api.node.config import ConfigError, load_config, resolve
    from api.node.server import serve_api
    from chain.node.node import ChainNode
    from testermint_py.mock_mlnode import DEFAULT_CONFIG, serve_mock_mlnode

    try:
        resolved = resolve(load_config(api_config_file(root)), root)
    except ConfigError as e:
        raise CliError(str(e)) from None
    mock_host, mock_port = _mock_bind(resolved.config)
    mock_config = msgspec.structs.replace(DEFAULT_CONFIG, host=mock_host, port=mock_port)
    node = ChainNode(home.root)
    logging.basicConfig(level=resolved.config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def start(nursery) -> None:
        await nursery.start(node.run)
        mock_url = await nursery.start(functools.partial(serve_mock_mlnode, mock_config))
        # The API node follows this chain node, wherever its config.toml makes it listen.
        api = dataclasses.replace(resolved, config=msgspec.structs.replace(
            resolved.config, chain_rpc=node.rpc_url))
        server = await nursery.start(functools.partial(serve_api, api))
        print(f"chain RPC:          {node.rpc_url}   (gonka query status --node "
              f"{node.rpc_url})")
        print(f"chain p2p:          {node.network.listen_address[0]}:"
              f"{node.network.listen_address[1]}  node id {node.node_key.id.hex()}")
        print(f"host account:       {api.account}  (validator operator, registers as a "
              "participant)")
        print(f"public API:         {server.public_url}   (OpenAI-compatible, signed requests)")
        print(f"admin API:          {server.admin_url}   (ML nodes: /admin/v1/nodes)")
        print(f"ML node (mock):     {mock_url}   (serves {DEVNET_MODEL})")
        print("\nWaiting for the host to win weight in PoC and serve "
              f"{DEVNET_MODEL} (about a minute)...", flush=True)
        nursery.start_soon(_announce_when_ready, root, node.rpc_url, server, api.account)

    def stopping(_signum: int) -> None:
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


async def _announce_when_ready(root: Path, rpc_url: str, server: ApiServer,
                               account: str) -> None:
    epoch, weight = await wait_until_serving(rpc_url, server.admin_url, account,
                                             on_stage=_print_stage)
    print(f"\n{READY}: epoch {epoch}, host weight {weight}, ML node serving {DEVNET_MODEL}")
    print(f"  public API {server.public_url}   admin API {server.admin_url}   "
          f"chain RPC {rpc_url}")
    print(_ready_text(root, server.public_url), flush=True)


def _print_stage(height: int, epoch: int, stage: str) -> None:
    print(f"  height {height:>5}  epoch {epoch}  {stage}", flush=True)


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
        "Not built yet (the devnet runs without them):",
        *(f"  - {part}: issue #{issue}" for part, issue in NOT_BUILT),
        "",
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


async def wait_until_serving(rpc_url: str, admin_url: str, account: str, *,
                             on_stage: Callable[[int, int, str], None] | None = None,
                             ) -> tuple[int, int]:
    """Wait, block by block, until a transfer agent would send `account` a request for the
    devnet model (api.routing.eligible over the current epoch group) and its API node has an ML
    node serving the model; (epoch, weight). `on_stage(height, epoch, stage)` is called at each
    new stage."""
    import httpx

    from api.routing import eligible
    from chain.rpc.client import RpcClient, RpcError

    seen = None
    async with httpx.AsyncClient(timeout=10) as http, RpcClient(rpc_url) as rpc, \
            rpc.events(types=("none",)) as frames:
        async for frame in frames:
            try:
                current = await rpc.query("epochs/current", at_height=str(frame.height))
                epoch, stage = current["effective_epoch"], current["stage"]
                if on_stage is not None and (epoch, stage) != seen:
                    seen = (epoch, stage)
                    on_stage(frame.height, epoch, stage)
                group = await rpc.query("epochs/group", epoch=str(epoch))
                nodes = (await http.get(f"{admin_url}/admin/v1/nodes")).json()
            except (RpcError, httpx.HTTPError, ValueError, KeyError):
                continue  # not there yet (no group, API node starting): ask at the next block
            me = [c for c in eligible(group.get("members") or (), DEVNET_MODEL,
                                      poc_running=current.get("upcoming_epoch") is not None)
                  if c.address == account]
            serving = any(n.get("actual") == "INFERENCE" and n.get("served_model") == DEVNET_MODEL
                          for n in nodes)
            if me and serving:
                return epoch, me[0].weight
    raise AssertionError("the chain's event stream ended")
