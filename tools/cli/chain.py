"""`gonka chain`: a chain node's home folder and process.

    gonka chain init --chain-id ID [--moniker NAME] [--overwrite]
    gonka chain show-node-id          the p2p id others put in persistent_peers (id@host:port)
    gonka chain show-validator        the consensus public key to put in a genesis
"""

from __future__ import annotations

import argparse
import logging

from chain.app.profiles import PROFILES
from chain.node.home import NodeHome
from chain.node.setup import SetupError, init_home, node_key, validator_key
from tools.cli.command import (
    CliError,
    add_home_option,
    add_output_option,
    first_exception,
    home,
    print_json,
    run_until_signal,
)


def register(commands: argparse._SubParsersAction) -> None:
    chain = commands.add_parser("chain", help="run and set up a chain node",
                                description="Run and set up a chain node.")
    sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create a node's home folder: config, genesis, node keys",
                          description="Create config.toml, genesis.json (no validators or "
                          "accounts yet), node_key.json and priv_validator_key.json.")
    add_home_option(init)
    init.add_argument("--chain-id", required=True)
    init.add_argument("--moniker", default="node", help="a readable name for this node")
    init.add_argument("--profile", choices=sorted(PROFILES), default="mainnet",
                      help="protocol parameters for the genesis (default: mainnet)")
    init.add_argument("--overwrite", action="store_true",
                      help="rewrite config and genesis of an initialised home (keys are kept)")
    add_output_option(init)
    init.set_defaults(run=_init)

    start = sub.add_parser("start", help="run the chain node until interrupted",
                           description="Run the chain node of a home folder until Ctrl-C.")
    add_home_option(start)
    start.set_defaults(run=_start)

    for name, what, run in (("show-node-id", "the p2p node id", _show_node_id),
                            ("show-validator", "the consensus public key (hex)", _show_validator)):
        p = sub.add_parser(name, help=f"print {what}", description=f"Print {what}.")
        add_home_option(p)
        p.set_defaults(run=run)


def _init(args: argparse.Namespace) -> int:
    try:
        node = init_home(home(args), args.chain_id, moniker=args.moniker, profile=args.profile,
                         overwrite=args.overwrite)
    except SetupError as e:
        raise CliError(str(e)) from None
    info = {
        "home": str(node.root),
        "chain_id": args.chain_id,
        "node_id": node_key(node).id.hex(),
        "validator_pubkey": validator_key(node).public_key.hex(),
    }
    if args.output == "json":
        print_json(info)
    else:
        for k, v in info.items():
            print(f"{k + ':':<18}{v}")
    return 0


def _start(args: argparse.Namespace) -> int:
    from chain.app.errors import ChainHalt
    from chain.consensus.driver import HandshakeError
    from chain.node.config import ConfigError
    from chain.node.node import ChainNode
    from chain.types.codec import DecodeError

    root = home(args)
    try:
        node = ChainNode(root)
    except (SetupError, ConfigError, DecodeError) as e:
        raise CliError(str(e)) from None
    logging.basicConfig(level=node.config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def start(nursery) -> None:
        await nursery.start(node.run)
        print(f"node {node.node_key.id.hex()} running: rpc {node.rpc_url}, "
              f"p2p {node.network.listen_address}", flush=True)

    try:
        run_until_signal(start)
    except BaseExceptionGroup as group:
        # A node that must not go on (its state diverged from the chain's, or its stores cannot
        # be reconciled) stops with one clear message naming the height, not a traceback.
        halt = first_exception(group, (ChainHalt, HandshakeError))
        if halt is None:
            raise
        raise CliError(f"node stopped: {halt}") from None
    except (ChainHalt, HandshakeError) as halt:
        raise CliError(f"node stopped: {halt}") from None
    return 0


def _show_node_id(args: argparse.Namespace) -> int:
    print(node_key(NodeHome(home(args))).id.hex())
    return 0


def _show_validator(args: argparse.Namespace) -> int:
    print(validator_key(NodeHome(home(args))).public_key.hex())
    return 0
