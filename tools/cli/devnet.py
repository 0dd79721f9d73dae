"""`gonka devnet`: the one-machine network of DESIGN.md section 2.

Today it runs the single-validator chain node of the devnet: on first use it creates the devnet
home (chain id `gonka-devnet`, a `developer` account funded in the genesis and stored unencrypted
in the home's key store, so `gonka keys export developer --home DIR` prints its key, and this
node as the only validator), then runs the node until Ctrl-C and prints its endpoints. The API
node and the ML node that complete the devnet are not built yet; it says so rather than pretend.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import native
from chain.crypto.keystore import Keystore
from chain.node.config import NodeConfig, P2PConfig
from chain.node.home import NodeHome
from chain.node.setup import add_account, add_validator, init_home, validator_key
from chain.types.common import NGONKA_PER_GONKA
from tools.cli.command import run_until_signal

DEFAULT_HOME = Path("~/.gonka/devnet")
CHAIN_ID = "gonka-devnet"
DEVELOPER = "developer"
OPERATOR = "validator-operator"
DEVELOPER_FUNDS = 1_000_000 * NGONKA_PER_GONKA

NOT_BUILT = (
    ("the devnet's API and ML-node processes (each runs alone: gonka api start, "
     "gonka mlnode start), the full testermint_py harness", 7),
)


def register(commands: argparse._SubParsersAction) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="run a one-machine network (chain; API and ML nodes to come)",
        description="Run the devnet: a single-validator chain (and, once built, an API node "
        "and an ML node) on this machine, until Ctrl-C.",
    )
    devnet.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help=f"the devnet's home folder (default: {DEFAULT_HOME})")
    devnet.add_argument("--init-only", action="store_true",
                        help="create the devnet home if missing, print it, and exit")
    devnet.set_defaults(run=_devnet)


def prepare_home(root: Path) -> NodeHome:
    """The devnet home, created with its developer account and validator on first use."""
    home = NodeHome(root)
    if home.config_file.exists():
        return home
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
    return home


def _devnet(args: argparse.Namespace) -> int:
    from chain.node.node import ChainNode

    root = Path(getattr(args, "home", None) or DEFAULT_HOME).expanduser()
    home = prepare_home(root)
    developer = Keystore(root).show(DEVELOPER)
    print(f"devnet home:        {root}")
    print(f"developer account:  {developer.address}  "
          f"(gonka keys export {DEVELOPER} --home {root})")
    print(f"native hot paths:   {native.BACKEND}")
    if args.init_only:
        return 0
    node = ChainNode(home.root)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def start(nursery) -> None:
        await nursery.start(node.run)
        print(f"chain RPC:          {node.rpc_url}   (gonka query status --node "
              f"{node.rpc_url})")
        print(f"chain p2p:          {node.network.listen_address[0]}:"
              f"{node.network.listen_address[1]}  node id {node.node_key.id.hex()}")
        print("try:                gonka tx send developer <address> 5gonka "
              f"--home {root} --node {node.rpc_url}")
        print("\nNot built yet (the devnet runs without them):")
        for part, issue in NOT_BUILT:
            print(f"  - {part}: issue #{issue}")
        print("\nRunning until Ctrl-C.", flush=True)

    def stopping(_signum: int) -> None:
        print(f"devnet stopping at height {node.store.height()}", file=sys.stderr)

    run_until_signal(start, stopping)
    return 0
