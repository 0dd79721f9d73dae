"""`gonka devnet`: the one-machine network of DESIGN.md section 2.

What exists today is the devnet's home folder and its funded-to-be `developer` account key (stored
unencrypted in the home's key store, so `gonka keys export developer --home DIR` prints it). The
chain node, API node and ML node that the devnet starts are not built yet; this command says so
plainly and starts nothing rather than pretending.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import native
from chain.crypto.keystore import Keystore

DEFAULT_HOME = Path("~/.gonka/devnet")
DEVELOPER = "developer"

NOT_BUILT = (
    ("chain node (consensus, p2p, mempool, store, RPC)", 3),
    ("ML node (PoC, vLLM inference and replay)", 4),
    ("protocol modules (epochs, PoC weights, inference, rewards)", 5),
    ("API node (OpenAI-compatible signed inference)", 6),
    ("devnet processes and the testermint_py harness", 7),
)


def register(commands: argparse._SubParsersAction) -> None:
    devnet = commands.add_parser(
        "devnet",
        help="run a one-machine network (chain, API node, ML node)",
        description="Run a single-validator chain, an API node and an ML node on this machine.",
    )
    devnet.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help=f"the devnet's home folder (default: {DEFAULT_HOME})")
    devnet.set_defaults(run=_devnet)


def _devnet(args: argparse.Namespace) -> int:
    home = Path(getattr(args, "home", None) or DEFAULT_HOME).expanduser()
    store = Keystore(home)
    if store.exists(DEVELOPER):
        info = store.show(DEVELOPER)
    else:
        info, _ = store.add_new(DEVELOPER, passphrase=None)
    print(f"devnet home:        {home}")
    print(f"developer account:  {info.address}  (gonka keys export {DEVELOPER} --home {home})")
    print(f"native hot paths:   {native.BACKEND}")
    print()
    print("Not built yet, so nothing was started:")
    for part, issue in NOT_BUILT:
        print(f"  - {part}: issue #{issue}")
    return 0
